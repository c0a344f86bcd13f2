import subprocess
import sys

import stalwart


def test_public_names_resolve():
    for name in stalwart.__all__:
        assert getattr(stalwart, name) is not None, name
    assert set(dir(stalwart)) == set(stalwart.__all__)


def test_import_is_light():
    # `import stalwart` (and so `stalwart --version`) must not pull in torch or sklearn
    code = "import sys, stalwart; print('torch' in sys.modules, 'sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
