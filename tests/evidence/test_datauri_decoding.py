"""One rule decodes a `data:` URI (`crawler.net.datauri`): the spider hashes and the
evidence archive replaces the very same bytes, and both call the same payloads malformed."""

from __future__ import annotations

import base64
import hashlib

import pytest

from crawler.evidence.datauri import sanitize
from spiders.extract import DataMedia, decode_data_uri

BODY = b"\x89PNG\r\n\x1a\n" + bytes(range(40))
B64 = base64.b64encode(BODY).decode()

DECODED = [
    f"data:image/png;base64,{B64}",
    f"data:IMAGE/PNG;BASE64,{B64[:20]}\n  {B64[20:]}",  # case, whitespace in the payload
    "data:image/png;base64," + B64.replace("+", "%2B").replace("/", "%2F"),  # percent-escaped
    "data:image/gif,GIF89a%01%02%00",  # not base64: percent-decoded bytes
]
MALFORMED = [
    "data:image/png;base64,ab%2Ccd",  # a comma once unescaped
    "data:image/png;base64,abc",  # bad padding
    "data:image/png;base64,%FF%FE",  # not ASCII once unescaped
]


@pytest.mark.parametrize("uri", DECODED)
def test_spider_and_evidence_see_the_same_bytes(uri: str) -> None:
    spider = decode_data_uri(uri, 10_000)
    assert isinstance(spider, DataMedia)
    (replaced,) = sanitize(f'<img src="{uri}">').replaced
    assert not replaced.malformed
    assert replaced.bytes == len(spider.body)
    assert replaced.sha256 == hashlib.sha256(spider.body).hexdigest()


@pytest.mark.parametrize("uri", MALFORMED)
def test_spider_and_evidence_call_the_same_payloads_malformed(uri: str) -> None:
    assert decode_data_uri(uri, 10_000) == "malformed"
    (replaced,) = sanitize(f'<img src="{uri}">').replaced
    assert replaced.malformed
