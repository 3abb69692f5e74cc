#!/usr/bin/env python3
"""Fails when a function of the product's C code is longer than the limit (issue 19: none over
80 lines). A function is a top-level brace block that follows a parameter list; its length
counts from the opening brace to the closing one. Strings, character constants and comments are
blanked first so that braces inside them do not count.

usage: check-function-length.py SOURCE_DIR [LIMIT]"""
import pathlib
import re
import sys

PRODUCT = ('protocol', 'agent-core', 'agent-linux', 'agent-windows', 'host')
NOT_PRODUCT = re.compile(r'(^|/)(tests?|fuzz|bench)/')
LITERAL = re.compile(r'"(\\.|[^"\\\n])*"|\'(\\.|[^\'\\\n])*\'')
BLOCK_COMMENT = re.compile(r'/\*.*?\*/', re.S)
LINE_COMMENT = re.compile(r'//[^\n]*')


def blank(text):
    """The text with literals and comments emptied, line breaks kept."""
    text = LITERAL.sub('""', text)
    text = BLOCK_COMMENT.sub(lambda m: '\n' * m.group(0).count('\n'), text)
    return LINE_COMMENT.sub('', text)


def functions(text):
    """(name, first line, length) of each top-level block that follows a ')'."""
    depth, start, name = 0, None, None
    lines = blank(text).split('\n')
    for number, line in enumerate(lines, 1):
        for column, ch in enumerate(line):
            if ch == '{':
                if depth == 0:
                    head = ' '.join(lines[max(0, number - 4):number - 1]) + line[:column]
                    match = re.search(r'(\w+)\s*\([^()]*(\([^()]*\)[^()]*)*\)\s*$', head)
                    start, name = (number, match.group(1)) if match else (None, None)
                depth += 1
            elif ch == '}':
                depth -= 1
                if depth == 0 and start is not None:
                    yield name, start, number - start + 1
                    start = None


def main():
    root = pathlib.Path(sys.argv[1])
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 80
    seen, long_ones = 0, []
    for part in PRODUCT:
        for path in sorted((root / part).rglob('*.c')):
            relative = path.relative_to(root).as_posix()
            if NOT_PRODUCT.search(relative):
                continue
            for name, line, length in functions(path.read_text(errors='replace')):
                seen += 1
                if length > limit:
                    long_ones.append(f'{relative}:{line}: {name} is {length} lines')
    print(f'{seen} functions read, longest allowed {limit} lines')
    if seen < 500:
        print('FAIL: too few functions found; the scan itself is broken')
        return 1
    for line in long_ones:
        print(f'FAIL: {line}')
    return 1 if long_ones else 0


if __name__ == '__main__':
    sys.exit(main())
