/** Saves text as a file through the browser's download (nothing leaves the device). */
export function downloadText(fileName: string, text: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  a.click();
  // The click starts the download asynchronously: revoke the URL once it has been read.
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
