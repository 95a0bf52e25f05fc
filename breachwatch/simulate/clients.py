"""Client software: the retailer's apps and the browsers customers, staff and partners use.

Each client has a User-Agent and a TLS fingerprint in the JA4 style. The
fingerprint identifies the TLS stack, not the person, so thousands of
customers on the same app build share one; an attacker's tool has its own.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Client:
    family: str
    user_agent: str
    fingerprint: str


def fingerprint(stack: str, ciphers: str = "1516", transport: str = "t", alpn: str = "h2") -> str:
    """A JA4-shaped fingerprint derived from the name of a TLS stack (stable, not random).

    JA4 starts with the transport (t: TCP, q: QUIC) and ends its first part with the ALPN (h2, h3).
    """
    d = hashlib.sha256(stack.encode()).hexdigest()
    return f"{transport}13d{ciphers}{alpn}_{d[:12]}_{d[12:24]}"


APP_VERSIONS = ("7.14.2", "7.14.1", "7.13.0")
ANDROID_DEVICES = (("14", "SM-S928N"), ("14", "SM-S921N"), ("13", "SM-G991N"), ("14", "SM-A536N"),
                   ("14", "SM-F946N"), ("13", "SM-N986N"))
IOS_DEVICES = (("17.5.1", "iPhone16,2"), ("17.4", "iPhone15,3"), ("16.7.8", "iPhone14,5"), ("17.5.1", "iPhone13,2"))


def app_clients(versions: tuple[str, ...], okhttp: str = "4.12.0", ios_http3: bool = False
                ) -> tuple[tuple[Client, ...], tuple[Client, ...]]:
    """(Android, iOS) builds of the retailer's app: per version, one client per device, in device order.

    The Android app bundles its HTTP stack (okhttp), whose version shapes its TLS fingerprint; the iOS app
    uses the system's, which a build can switch to HTTP/3 (QUIC), changing the fingerprint's transport and ALPN.
    """
    ok = ".".join(okhttp.split(".")[:2])
    android = tuple(Client("app-android", f"RetailApp/{v} (Android {os}; {dev}; ko-KR) okhttp/{okhttp}",
                           fingerprint(f"okhttp-{ok}-android-{os}"))
                    for v in versions for os, dev in ANDROID_DEVICES)
    quic = {"transport": "q", "alpn": "h3"} if ios_http3 else {}
    ios = tuple(Client("app-ios", f"RetailApp/{v} ({dev}; iOS {os}; ko-KR) CFNetwork/1496.0.7 Darwin/23.5.0",
                       fingerprint(f"cfnetwork-ios-{os.split('.')[0]}", "1312", **quic))
                for v in versions for os, dev in IOS_DEVICES)
    return android, ios


def _clients() -> dict[str, tuple[Client, ...]]:
    android, ios = app_clients(APP_VERSIONS)
    chrome = "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0"
    pc = (
        Client("web-chrome", f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) {chrome} Safari/537.36",
               fingerprint("chrome-125")),
        Client("web-edge", f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) {chrome} Safari/537.36 Edg/125.0.0.0",
               fingerprint("chrome-125")),
        Client("web-whale", f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) {chrome} Whale/3.26.244.21 Safari/537.36",
               fingerprint("whale-3.26")),
        Client("web-safari", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
               "Gecko) Version/17.5 Safari/605.1.15", fingerprint("safari-17", "2113")),
    )
    mobile = (
        Client("web-samsung", "Mozilla/5.0 (Linux; Android 14; SM-S921N) AppleWebKit/537.36 (KHTML, like Gecko) "
               "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36", fingerprint("samsung-25")),
        Client("web-safari-ios", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
               "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", fingerprint("safari-17-ios", "2113")),
        Client("web-chrome-android", "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
               "Chrome/125.0.0.0 Mobile Safari/537.36", fingerprint("chrome-125")),
    )
    return {"app-android": android, "app-ios": ios, "web-pc": pc, "web-mobile": mobile}


CUSTOMER_CLIENTS = _clients()
# Device classes and their share of members: mostly the app, as in Korean e-commerce.
DEVICE_CLASSES = ("app-android", "app-ios", "web-pc", "web-mobile")
DEVICE_SHARE = np.array([0.45, 0.25, 0.20, 0.10])
IS_APP = np.array([True, True, False, False])
# Flattened table of every customer client, so a member's client is one integer.
ALL_CUSTOMER_CLIENTS: tuple[Client, ...] = tuple(c for d in DEVICE_CLASSES for c in CUSTOMER_CLIENTS[d])
CLASS_FIRST = np.cumsum([0] + [len(CUSTOMER_CLIENTS[d]) for d in DEVICE_CLASSES])[:-1]
CLASS_COUNT = np.array([len(CUSTOMER_CLIENTS[d]) for d in DEVICE_CLASSES])

OFFICE_BROWSER = Client("web-chrome", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
                        "Gecko) Chrome/124.0.0.0 Safari/537.36", fingerprint("chrome-124-managed"))
HOME_BROADBAND_BROWSER = CUSTOMER_CLIENTS["web-pc"][0]
SHIPPING_LABEL = Client("python-httpx", "shipping-label/3.2.1 python-httpx/0.27.0", fingerprint("python-httpx-0.27"))
MAILER = Client("java", "marketing-mailer/5.0.3 Java-http-client/17.0.11", fingerprint("java-17-http"))
SELLER_TOOLS = (
    Client("web-chrome", CUSTOMER_CLIENTS["web-pc"][0].user_agent, CUSTOMER_CLIENTS["web-pc"][0].fingerprint),
    Client("web-whale", CUSTOMER_CLIENTS["web-pc"][2].user_agent, CUSTOMER_CLIENTS["web-pc"][2].fingerprint),
    Client("sellertool", "SellerHub-Connector/2.8.0 (+https://sellerhub.example)", fingerprint("go-1.22")),
    Client("sellertool", "ShopLinker/4.1 Apache-HttpClient/4.5.14 (Java/11.0.22)", fingerprint("java-11-apache")),
)
