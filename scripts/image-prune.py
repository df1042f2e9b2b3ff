"""Run inside the image build (Dockerfile), with the venv's python: prunes the Kubernetes client.

The bot uses the synchronous client only, so the asyncio copy of it (`kubernetes/aio`, ~70 MB) goes,
and the generated API and model modules (~1,800 files, 33 MB of source) are kept as bytecode only:
tracebacks there show file and line, not the source line. Nothing else is touched.
"""

import compileall
import pathlib
import shutil

import kubernetes

root = pathlib.Path(kubernetes.__file__).parent
shutil.rmtree(root / "aio", ignore_errors=True)
for sub in (root / "client" / "api", root / "client" / "models"):
    if not compileall.compile_dir(sub, quiet=1, legacy=True, workers=0):
        raise SystemExit(f"could not compile {sub}")
    for cache in list(sub.rglob("__pycache__")):
        shutil.rmtree(cache)
    for source in list(sub.rglob("*.py")):
        source.unlink()
