"""Starting headless Chromium and Firefox ESR at a page of `iceprobe serve` inside the lan
namespace (tests/lab/browser.py), with fake media, a fresh profile, and optionally a lab CA
trusted, so that an https link is a real secure context (no insecure-origin flag).

- Chromium trusts the CA through the run's NSS database ($HOME/.pki/nssdb, `trust_ca`).
- Firefox ESR trusts it through the profile's own NSS database (cert9.db, made here with
  certutil before the first start): Firefox reads certificates and trust from the profile
  directory. (security.enterprise_roots.enabled reads the operating system's roots on
  Windows and macOS only, and a policies.json would have to go into the installation
  directory, i.e. change the machine.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.lab.browser import (
    CHROMIUM_FLAGS,
    BrowserLabUnavailable,
    LanNamespace,
    chromium_binary,
    trust_ca,
)

#: shared/LAB.md: what a headless Firefox needs for fake media with no permission prompt,
#: and to stay quiet (no telemetry, updates, safe browsing or captive-portal checks).
#: `media.navigator.permission.fake`: Firefox counts a capture from a fake device as a
#: capture (MediaManager's IsActivelyCapturingOrHasAPermission) only with it; without it a
#: page that holds the fake microphone still gets mDNS host candidates, where a real
#: microphone would reveal the host addresses.
FIREFOX_PREFS: dict[str, object] = {
    "media.navigator.permission.disabled": True,
    "media.navigator.streams.fake": True,
    "media.navigator.permission.fake": True,
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.unified": False,
    "toolkit.telemetry.server": "",
    "datareporting.healthreport.uploadEnabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "app.update.enabled": False,
    "app.update.auto": False,
    "app.update.disabledForTesting": True,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.blockedURIs.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.aboutwelcome.enabled": False,
    "datareporting.policy.firstRunURL": "",
    "extensions.update.enabled": False,
    "services.settings.server": "",
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
}
#: Chromium: a fake microphone, and the permission prompt answered "allow".
CHROMIUM_MEDIA_FLAGS = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream")


def firefox_binary() -> str | None:
    return shutil.which("firefox-esr") or shutil.which("firefox")


def browser_env(profile: str) -> dict[str, str]:
    """A browser's environment: HOME and the XDG directories inside its fresh profile."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": profile,
            "XDG_CONFIG_HOME": os.path.join(profile, "config"),
            "XDG_CACHE_HOME": os.path.join(profile, "cache"), "LANG": "C.UTF-8",
            "MOZ_CRASHREPORTER_DISABLE": "1"}


def trust_ca_in_firefox_profile(profile_dir: str, ca: Path) -> None:
    """Make `ca` a trusted root (for web sites) in a Firefox profile that has not run yet."""
    certutil = shutil.which("certutil")
    if certutil is None:
        raise BrowserLabUnavailable("certutil is missing (apt-get install libnss3-tools; "
                                    "scripts/test installs it)")
    for argv in ([certutil, "-d", f"sql:{profile_dir}", "-N", "--empty-password"],
                 [certutil, "-d", f"sql:{profile_dir}", "-A", "-n", "iceprobe-lab-ca",
                  "-t", "C,,", "-i", str(ca)]):
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            raise BrowserLabUnavailable(f"`{' '.join(argv)}` failed: {done.stderr.strip()}")


def browser_argv(browser: str, profile: str, url: str, ca: Path | None = None
                 ) -> list[str]:
    """The command that opens `url` in headless `browser` ("chromium" or "firefox") with a
    fresh profile under `profile`, fake media, and `ca` trusted when given;
    BrowserLabUnavailable when the browser is not installed."""
    if browser == "chromium":
        binary = chromium_binary()
        if binary is None:
            raise BrowserLabUnavailable("chromium is missing (scripts/test installs it)")
        if ca is not None:
            trust_ca(profile, ca)
        return [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}/user-data",
                *CHROMIUM_MEDIA_FLAGS, url]
    binary = firefox_binary()
    if binary is None:
        raise BrowserLabUnavailable("firefox-esr is missing (scripts/test installs it)")
    profile_dir = os.path.join(profile, "firefox")
    os.makedirs(profile_dir)
    with open(os.path.join(profile_dir, "user.js"), "w") as handle:
        for name, value in FIREFOX_PREFS.items():
            handle.write(f"user_pref({json.dumps(name)}, {json.dumps(value)});\n")
    if ca is not None:
        trust_ca_in_firefox_profile(profile_dir, ca)
    return [binary, "--headless", "--no-remote", "--profile", profile_dir, url]


def start_browser(browser: str, lan: LanNamespace, profile: str, url: str,
                  ca: Path | None = None) -> subprocess.Popen[Any]:
    """The browser running in the lan, its output in PROFILE/browser.log; stop it with
    tests.lab.browser.stop_browser(process, profile)."""
    argv = browser_argv(browser, profile, url, ca)
    with open(os.path.join(profile, "browser.log"), "wb") as log:
        return lan.popen(argv, stdout=log, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, env=browser_env(profile),
                         start_new_session=True)


def browser_log(profile: str) -> str:
    """The end of the browser's output, for a failure message."""
    try:
        with open(os.path.join(profile, "browser.log"), errors="replace") as handle:
            return handle.read()[-3000:]
    except OSError:
        return "(no output)"
