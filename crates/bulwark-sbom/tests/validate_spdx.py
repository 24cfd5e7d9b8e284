"""Validates SPDX 2.3 JSON documents with the reference implementation.

Usage: python3 validate_spdx.py FILE...

Each file is parsed with spdx-tools' JSON parser and checked with its
full-document validator for SPDX-2.3. Prints one line per file,
"ok<TAB>FILE" or "invalid<TAB>FILE<TAB>REASON". Exits 3 when the
reference is not installed, 0 otherwise.
"""

import json
import sys

INSTALL = "python3 -m pip install 'spdx-tools==0.8.5'"

try:
    from importlib.metadata import version

    from spdx_tools.spdx.parser.error import SPDXParsingError
    from spdx_tools.spdx.parser.jsonlikedict.json_like_dict_parser import JsonLikeDictParser
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document
except ImportError as e:
    print(f"MISSING spdx-tools ({e}); install it with: {INSTALL}")
    sys.exit(3)


def check(path):
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except ValueError as e:
            return f"not JSON: {e}"
    if not isinstance(data, dict):
        return "not a JSON object"
    try:
        document = JsonLikeDictParser().parse(data)
    except SPDXParsingError as e:
        return "parse: " + "; ".join(e.get_messages())[:300]
    except Exception as e:  # the parser raises plain errors on some wrong types
        return f"parse: {type(e).__name__}: {e}"[:300]
    messages = validate_full_spdx_document(document, "SPDX-2.3")
    if messages:
        return "validate: " + "; ".join(m.validation_message for m in messages)[:300]
    return None


print(f"reference spdx-tools {version('spdx-tools')}")
for path in sys.argv[1:]:
    reason = check(path)
    print(f"ok\t{path}" if reason is None else f"invalid\t{path}\t{reason}")
