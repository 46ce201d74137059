/**
 * `strftime` as Python's `datetime.strftime` prints it on Linux (glibc, "C" locale), for the
 * `strftime_now(format)` that chat templates call to put today's date into the system prompt
 * (Llama 3.1: "%d %b %Y", Granite: "%B %d, %Y", Mistral Small: "%Y-%m-%d").
 *
 * @huggingface/jinja ships its own `strftime_now`, but it formats month names with the host's
 * `Intl` locale and knows only a few directives; a prompt must not change with the browser's
 * language, so the names here are the fixed English ones of the C locale.
 *
 * Fields are read in local time, as Python's naive `datetime.now()` does. glibc's `-` flag
 * ("%-d": no padding) is supported; a directive this function does not know is copied through
 * unchanged, as glibc does.
 */

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = [
  'January', 'February', 'March', 'April', 'May', 'June',
  'July', 'August', 'September', 'October', 'November', 'December',
];

function pad(value: number, width: number, fill: string, noPad: boolean): string {
  const text = String(value);
  return noPad ? text : text.padStart(width, fill);
}

function dayOfYear(date: Date): number {
  const start = new Date(date.getFullYear(), 0, 1);
  const startUtc = Date.UTC(start.getFullYear(), 0, 1);
  const dayUtc = Date.UTC(date.getFullYear(), date.getMonth(), date.getDate());
  return Math.round((dayUtc - startUtc) / 86_400_000) + 1;
}

export function strftime(date: Date, format: string): string {
  return format.replace(/%(-?)([a-zA-Z%])/g, (whole, flag: string, directive: string) => {
    const noPad = flag === '-';
    const hours12 = date.getHours() % 12 === 0 ? 12 : date.getHours() % 12;
    switch (directive) {
      case 'a': return DAYS[date.getDay()]!.slice(0, 3);
      case 'A': return DAYS[date.getDay()]!;
      case 'b':
      case 'h': return MONTHS[date.getMonth()]!.slice(0, 3);
      case 'B': return MONTHS[date.getMonth()]!;
      case 'C': return pad(Math.floor(date.getFullYear() / 100), 2, '0', noPad);
      case 'd': return pad(date.getDate(), 2, '0', noPad);
      case 'e': return pad(date.getDate(), 2, ' ', noPad);
      case 'H': return pad(date.getHours(), 2, '0', noPad);
      case 'I': return pad(hours12, 2, '0', noPad);
      case 'j': return pad(dayOfYear(date), 3, '0', noPad);
      case 'm': return pad(date.getMonth() + 1, 2, '0', noPad);
      case 'M': return pad(date.getMinutes(), 2, '0', noPad);
      case 'p': return date.getHours() < 12 ? 'AM' : 'PM';
      case 'S': return pad(date.getSeconds(), 2, '0', noPad);
      case 'u': return String(date.getDay() === 0 ? 7 : date.getDay());
      case 'w': return String(date.getDay());
      case 'y': return pad(date.getFullYear() % 100, 2, '0', noPad);
      case 'Y': return String(date.getFullYear());
      case 'D': return strftime(date, '%m/%d/%y');
      case 'F': return strftime(date, '%Y-%m-%d');
      case 'T': return strftime(date, '%H:%M:%S');
      case 'R': return strftime(date, '%H:%M');
      case 'c': return strftime(date, '%a %b %e %H:%M:%S %Y');
      case 'x': return strftime(date, '%m/%d/%y');
      case 'X': return strftime(date, '%H:%M:%S');
      case 'n': return '\n';
      case 't': return '\t';
      // A naive datetime has no zone: Python prints nothing for these.
      case 'z':
      case 'Z': return '';
      case '%': return '%';
      default: return whole;
    }
  });
}
