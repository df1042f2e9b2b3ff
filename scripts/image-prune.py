"""Run inside the image build (Dockerfile), with the venv's python: removes from the venv what the bot
never loads, and says what went and how much.

* The Kubernetes client: the bot uses the synchronous client only, so the asyncio copy of it
  (`kubernetes/aio`, ~70 MB) goes, and the generated API and model modules (~1,800 files, 33 MB of
  source) are kept as bytecode only: tracebacks there show file and line, not the source line.
* Test suites (`tests` directories: numpy, matplotlib, mpl_toolkits, ...), numpy's build tools
  (`f2py`, `distutils`, C headers, static libraries, the `_*_tests` extension modules, `testing`) and
  matplotlib's `testing` helpers: none is imported at run time.
* Type stubs (`*.pyi`): read by type checkers only.
* matplotlib's sample data and every font but DejaVu Sans (regular, bold, oblique, display: the
  drawing's text and matplotlib's default mathtext set) and its last-resort glyph font; the
  axes_grid1/axisartist toolkits (mplot3d stays: `matplotlib.projections` imports it).
* fontTools' packages outside what matplotlib reaches (its Agg path imports `fontTools.agl` only; the
  PDF/PS/SVG paths subset fonts with ttLib, subset, varLib, feaLib, ...: those stay too).
* Pillow's AVIF, WebP, FreeType and LittleCMS modules and the libraries only they load: matplotlib
  writes PNG through `PIL._imaging` (zlib) and draws text with its own FreeType (`ft2font`).
  `PIL.features` and Pillow's plugin loader treat a missing module as an unsupported format.

numpy's bundled OpenBLAS (`numpy.libs`) stays: `numpy._core._multiarray_umath` links it.
Last, the debug sections of the wheels' own shared objects go (`strip --strip-debug`, when binutils
is there: the Dockerfile installs it in the build stage only), each checked to still load.
"""

import compileall
import importlib.util
import pathlib
import shutil
import subprocess
import sys


def package(name: str) -> pathlib.Path:
    """Where a package is, without importing it: this process loads none of the venv's shared
    objects, so stripping them in place (binutils' strip rewrites the file) cannot pull code from under
    it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{name} is not installed")
    return pathlib.Path(next(iter(spec.submodule_search_locations)))


site = package("kubernetes").parent
venv_bin = pathlib.Path(sys.prefix) / "bin"
freed: dict[str, int] = {}


def size(path: pathlib.Path) -> int:
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def remove(path: pathlib.Path, why: str) -> None:
    if not path.exists() and not path.is_symlink():
        return
    freed[why] = freed.get(why, 0) + size(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


# --- the Kubernetes client --------------------------------------------------------------------------
kube = package("kubernetes")
remove(kube / "aio", "kubernetes asyncio client")
for sub in (kube / "client" / "api", kube / "client" / "models"):
    if not compileall.compile_dir(sub, quiet=1, legacy=True, workers=0):
        raise SystemExit(f"could not compile {sub}")
    for cache in list(sub.rglob("__pycache__")):
        shutil.rmtree(cache)
    for source in list(sub.rglob("*.py")):
        remove(source, "kubernetes generated sources (bytecode kept)")

# --- test suites and type stubs ---------------------------------------------------------------------
for tests in sorted(site.glob("*/**/tests")):
    if tests.is_dir():
        remove(tests, "tests directories")
for stub in list(site.rglob("*.pyi")):
    remove(stub, "type stubs (*.pyi)")

# --- numpy: build tools and test helpers (numpy.libs, OpenBLAS, stays) -------------------------------
np_root = package("numpy")
for name in ("f2py", "distutils", "testing", "_pyinstaller", "_core/include", "_core/lib"):
    remove(np_root / name, "numpy build tools and testing")
for module in np_root.glob("_core/_*_tests.*.so"):
    remove(module, "numpy build tools and testing")
for script in ("f2py", "numpy-config"):
    remove(venv_bin / script, "numpy build tools and testing")

# --- matplotlib: data, fonts, toolkits --------------------------------------------------------------
mpl_root = package("matplotlib")
data = mpl_root / "mpl-data"
remove(mpl_root / "testing", "matplotlib testing helpers")
remove(data / "sample_data", "matplotlib sample data")
KEPT_FONTS = {
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansDisplay.ttf",
    "LastResortHE-Regular.ttf",
    "LICENSE_DEJAVU",
}
for font in list((data / "fonts").rglob("*")):
    if font.is_file() and font.name not in KEPT_FONTS:
        remove(font, "matplotlib fonts other than DejaVu Sans")
for toolkit in ("axes_grid1", "axisartist"):
    remove(site / "mpl_toolkits" / toolkit, "mpl_toolkits axes_grid1/axisartist")

# --- fontTools: only what matplotlib's backends import ----------------------------------------------
fonttools = site / "fontTools"
REACHED = {
    "__init__.py",
    "__main__.py",
    "agl.py",
    "cffLib",
    "colorLib",
    "config",
    "designspaceLib",
    "encodings",
    "feaLib",
    "misc",
    "otlLib",
    "pens",
    "subset",
    "ttLib",
    "unicode.py",
    "unicodedata",
    "varLib",
    "__pycache__",
}
if fonttools.is_dir():
    for entry in list(fonttools.iterdir()):
        if entry.name not in REACHED:
            remove(entry, "fontTools packages matplotlib never imports")
    for script in ("fonttools", "pyftmerge", "pyftsubset", "ttx"):
        remove(venv_bin / script, "fontTools packages matplotlib never imports")

# --- Pillow: PNG (and the formats its core module links) only ----------------------------------------
pil_root = package("PIL")
pil_libs = site / "pillow.libs"
for module in ("_avif", "_webp", "_imagingft", "_imagingcms", "_imagingtk"):
    for found in pil_root.glob(f"{module}.*.so"):
        remove(found, "Pillow AVIF/WebP/FreeType/LCMS/Tk modules and their libraries")
for lib in ("libavif", "libwebp", "libwebpmux", "libwebpdemux", "libsharpyuv", "libfreetype", "libharfbuzz",
            "libbrotlidec", "libbrotlicommon", "liblcms2", "libpng16"):  # fmt: skip
    for found in pil_libs.glob(f"{lib}-*.so*"):
        remove(found, "Pillow AVIF/WebP/FreeType/LCMS/Tk modules and their libraries")

# --- debug sections of the shared objects -----------------------------------------------------------
# Only files that carry .debug_* sections, and never the libraries auditwheel vendored (`*.libs/`):
# `strip` can break what patchelf rewrote (numpy's OpenBLAS then fails to load: "ELF load command
# address/offset not page-aligned"). Each stripped file must still load (dlopen, in a fresh process,
# with its RPATH) or the original is put back.
if shutil.which("strip") and shutil.which("readelf"):
    for so in sorted(pathlib.Path(sys.prefix).rglob("*.so*")):
        if not so.is_file() or so.is_symlink() or any(part.endswith(".libs") for part in so.parts):
            continue
        sections = subprocess.run(["readelf", "-S", "-W", str(so)], capture_output=True, text=True, check=False)
        if ".debug_" not in sections.stdout:
            continue
        before = so.stat().st_size
        backup = so.with_name(so.name + ".unstripped")
        shutil.copy2(so, backup)
        subprocess.run(["strip", "--strip-debug", str(so)], check=True)
        loads = subprocess.run([sys.executable, "-c", "import ctypes, sys; ctypes.CDLL(sys.argv[1])", str(so)],
                               capture_output=True, check=False)  # fmt: skip
        if loads.returncode != 0:
            print(f"image-prune: {so} does not load once stripped: kept as it was")
            backup.replace(so)
            continue
        backup.unlink()
        freed["debug sections of shared objects"] = (
            freed.get("debug sections of shared objects", 0) + before - so.stat().st_size
        )

for why, freed_bytes in sorted(freed.items(), key=lambda item: -item[1]):
    print(f"image-prune: {freed_bytes / 1e6:6.1f} MB  {why}")
print(f"image-prune: {sum(freed.values()) / 1e6:6.1f} MB in all")
