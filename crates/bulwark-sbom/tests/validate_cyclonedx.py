"""Validates CycloneDX JSON documents with the reference implementation.

Usage: python3 validate_cyclonedx.py FILE...

Each file is checked with cyclonedx-python-lib's strict JSON validator
(the official CycloneDX schema, additional properties refused) for the
file's own specVersion (1.5 or 1.6). Prints one line per file,
"ok<TAB>FILE" or "invalid<TAB>FILE<TAB>REASON". Exits 3 when the
reference is not installed, 0 otherwise.
"""

import json
import sys

INSTALL = "python3 -m pip install 'cyclonedx-python-lib[json-validation]==11.12.0'"

try:
    from cyclonedx import __version__ as CDX_VERSION
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
except ImportError as e:
    print(f"MISSING cyclonedx-python-lib ({e}); install it with: {INSTALL}")
    sys.exit(3)

VERSIONS = {"1.5": SchemaVersion.V1_5, "1.6": SchemaVersion.V1_6}


def check(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        spec = json.loads(text).get("specVersion", "1.6")
    except (ValueError, AttributeError) as e:
        return f"not a JSON object: {e}"
    validator = JsonStrictValidator(VERSIONS.get(spec, SchemaVersion.V1_6))
    error = validator.validate_str(text)
    return None if error is None else str(error).splitlines()[0]


print(f"reference cyclonedx-python-lib {CDX_VERSION}")
for path in sys.argv[1:]:
    reason = check(path)
    print(f"ok\t{path}" if reason is None else f"invalid\t{path}\t{reason}")
