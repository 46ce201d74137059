#!/usr/bin/python3
"""Reference renderer for chat templates: Python's jinja2 set up the way Hugging Face transformers does
(transformers/utils/chat_template_utils.py, _cached_compile_jinja_template):
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with the loopcontrols extension and
the `{% generation %}` tag, `tojson` overridden to json.dumps(ensure_ascii=False), and the globals
raise_exception and strftime_now. strftime_now reads a fixed date given in the input, so renders are
deterministic.

Input (stdin, JSON): {"cases": [{"template": str, "context": {...}, "now": [Y, m, d, H, M, S]}, ...]}
Output (stdout, JSON): one entry per case, in order:
  {"ok": true, "text": str}
  {"ok": false, "raised": true,  "message": str}   raise_exception() was called by the template
  {"ok": false, "raised": false, "message": str}   any other jinja2 error (syntax, security, type...)
Run it with Debian's interpreter (/usr/bin/python3, package python3-jinja2).
"""
import json
import sys
from datetime import datetime

import jinja2
import jinja2.ext
import jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment


class TemplateRaised(jinja2.exceptions.TemplateError):
    """What raise_exception() throws: transformers raises a plain TemplateError; a subclass lets us tell it apart."""


class GenerationTag(jinja2.ext.Extension):
    """transformers' AssistantTracker without the tracking: `{% generation %}...{% endgeneration %}` renders its body."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def make_env(now):
    def raise_exception(message):
        raise TemplateRaised(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return now.strftime(fmt)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[GenerationTag, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


_compiled = {}


def compile_template(source, now):
    # Compiling is most of the cost; the cases of one template share one compilation.
    key = (source, now)
    if key not in _compiled:
        _compiled[key] = make_env(now).from_string(source)
    return _compiled[key]


def render(case):
    now = datetime(*case.get("now", [2024, 7, 26, 10, 11, 12]))
    try:
        template = compile_template(case["template"], now)
        return {"ok": True, "text": template.render(**case["context"])}
    except TemplateRaised as e:
        return {"ok": False, "raised": True, "message": str(e.message)}
    except Exception as e:  # noqa: BLE001 - every failure is reported to the caller, which compares it
        return {"ok": False, "raised": False, "message": f"{type(e).__name__}: {e}"}


def main():
    request = json.load(sys.stdin)
    json.dump([render(case) for case in request["cases"]], sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
