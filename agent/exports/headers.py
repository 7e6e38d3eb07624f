"""Header cells that name personal fields (收件人, 电话, address ...), reduced to category names.

Only the category is ever reported, never the cell text. A header cell is a short label; the
first matching category in `CATEGORY_ORDER` wins, so "收件人电话" is a phone column and
"收件人" alone a name column.
"""

from __future__ import annotations

import itertools
import re

CATEGORY_ORDER = ("phone", "address", "id_card", "waybill", "name")
MAX_LABEL_CHARS = 32

_CHINESE: dict[str, tuple[str, ...]] = {
    "phone": ("电话", "手机", "联系方式", "座机"),
    "address": ("地址", "住址"),
    "id_card": ("身份证", "证件号"),
    "waybill": ("运单", "单号", "快递单", "面单"),
    "name": ("姓名", "收件人", "寄件人", "收货人", "发件人", "联系人", "客户名", "名字"),
}
_ENGLISH: dict[str, frozenset[str]] = {
    "phone": frozenset({"phone", "mobile", "tel", "telephone", "cellphone", "cell", "phonenumber",
                        "mobilephone", "contact"}),
    "address": frozenset({"address", "addr", "street"}),
    "id_card": frozenset({"idcard", "idno", "identity", "ssn", "passport"}),
    "waybill": frozenset({"waybill", "tracking", "awb", "trackingno", "waybillno"}),
    "name": frozenset({"name", "fullname", "recipient", "receiver", "sender", "consignee", "shipper",
                       "customer", "firstname", "lastname", "surname"}),
}
# camelCase and snake/kebab/space/dot separated words: "receiverPhone" -> receiver, phone.
_DIGIT_RUN = re.compile(r"\d{3}")
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")


def _english_words(label: str) -> set[str]:
    words = [word.lower() for word in _WORD.findall(label)]
    joined = {a + b for a, b in itertools.pairwise(words)}  # "id card" -> "idcard"
    return set(words) | joined


def header_category(cell: str) -> str | None:
    """The personal-field category a header label names, or None."""
    label = cell.strip()
    if not label or len(label) > MAX_LABEL_CHARS or _DIGIT_RUN.search(label):
        return None  # a label may be numbered ("电话2"), but a run of digits is a value
    words = _english_words(label)
    for category in CATEGORY_ORDER:
        if any(keyword in label for keyword in _CHINESE[category]):
            return category
        if words & _ENGLISH[category]:
            return category
    return None
