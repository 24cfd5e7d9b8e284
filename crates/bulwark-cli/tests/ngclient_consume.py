"""python-tuf's ngclient consumes Bulwark's image repository.

Usage: ngclient_consume.py API_URL TOKEN ROOT_JSON WORKDIR TARGET EXPECTED_SHA256

Refreshes from /api/v1/repo/metadata/, looks TARGET up, downloads it from
/api/v1/repo/targets/ (hash-prefixed, consistent snapshots) and checks the
bytes. Exits non-zero with the python-tuf error on any failure.
"""

import hashlib
import os
import sys
import urllib.error
import urllib.request

from tuf.api.exceptions import DownloadHTTPError
from tuf.ngclient import FetcherInterface, Updater


class BearerFetcher(FetcherInterface):
    """Adds the API token; maps HTTP errors the way ngclient expects."""

    def __init__(self, token: str) -> None:
        self.token = token

    def _fetch(self, url: str):
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token}"})
        try:
            resp = urllib.request.urlopen(req, timeout=30)
        except urllib.error.HTTPError as e:
            raise DownloadHTTPError(str(e), e.code) from e
        while True:
            chunk = resp.read(65536)
            if not chunk:
                return
            yield chunk


def main() -> None:
    api, token, root, work, target, expected = sys.argv[1:7]
    md = os.path.join(work, "metadata")
    os.makedirs(md, exist_ok=True)
    with open(root, "rb") as f:
        root_bytes = f.read()
    updater = Updater(
        metadata_dir=md,
        metadata_base_url=f"{api}/api/v1/repo/metadata/",
        target_base_url=f"{api}/api/v1/repo/targets/",
        target_dir=work,
        fetcher=BearerFetcher(token),
        bootstrap=root_bytes,
    )
    updater.refresh()
    info = updater.get_targetinfo(target)
    if info is None:
        sys.exit(f"target {target} not listed")
    path = updater.download_target(info, os.path.join(work, "download"))
    with open(path, "rb") as f:
        got = hashlib.sha256(f.read()).hexdigest()
    if got != expected:
        sys.exit(f"downloaded {got}, expected {expected}")
    from tuf.api.metadata import Metadata, Targets

    with open(os.path.join(md, "targets.json"), "rb") as f:
        version = Metadata[Targets].from_bytes(f.read()).signed.version
    print(f"ok {target} {got} targets v{version}")


if __name__ == "__main__":
    main()
