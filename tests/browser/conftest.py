"""A real headless browser for tests: Debian's ``chromium`` driven through its
``chromedriver`` by selenium.

The ``chromium`` fixture installs the two Debian packages (``chromium``,
``chromium-driver``) with apt-get when they are missing (as root; ``apt-get update``
first only if the package lists do not know them yet); when both are there it costs
two ``stat`` calls. ``browser`` is a fresh headless Chromium per test, with its own
profile directory. Screenshots go to ``test-artifacts/`` at the repository's root
(ignored by git); the tests print the path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PACKAGES = ("chromium", "chromium-driver")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

# apt-get may wait for another apt (unattended upgrades) holding the dpkg lock; a cold
# install downloads ~100 MB.
APT_TIMEOUT = 400
#: Flags that run Chromium headless in a container as root, without reaching out to
#: the network on its own (no internet here: component updates would only stall).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def _installed() -> bool:
    return os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)


def _apt_get(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["apt-get", "-q", "-o", "DPkg::Lock::Timeout=600", *args],
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=APT_TIMEOUT,
    )


def install_chromium() -> None:
    """Install Debian's chromium and chromium-driver unless both are there; fail the
    test with what to do when that is not possible."""
    if _installed():
        return
    manual = f"install them with: apt-get install {' '.join(PACKAGES)}"
    if shutil.which("apt-get") is None:
        pytest.fail(f"{CHROMIUM} or {CHROMEDRIVER} is missing and there is no apt-get: {manual}")
    if os.geteuid() != 0:
        pytest.fail(f"{CHROMIUM} or {CHROMEDRIVER} is missing and this is not root: {manual}")
    install = ("install", "-y", "--no-install-recommends", *PACKAGES)
    done = _apt_get(*install)
    if done.returncode != 0:
        # A fresh machine's package lists may be empty or out of date.
        update = _apt_get("update")
        if update.returncode != 0:
            pytest.fail(f"apt-get update failed:\n{update.stderr.strip()}")
        done = _apt_get(*install)
    if done.returncode != 0 or not _installed():
        pytest.fail(
            f"apt-get install {' '.join(PACKAGES)} failed (exit {done.returncode}):\n"
            f"{done.stderr.strip()}"
        )


@pytest.fixture(scope="session")
def chromium() -> Path:
    """The path of Debian's chromium, installed (with chromedriver) if missing."""
    install_chromium()
    return CHROMIUM


@pytest.fixture
def browser(chromium: Path, tmp_path: Path) -> Iterator[object]:
    """A headless Chromium (a selenium WebDriver), 1366x900, with a fresh profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument("--window-size=1366,900")
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    # The driver's path is given, so selenium does not look for (or download) one.
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def artifacts() -> Path:
    """``test-artifacts/`` at the repository's root, for screenshots."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
