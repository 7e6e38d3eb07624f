"""What personal data looks like in an export: compiled matchers and validators.

Matchers run over rows turned into strings (every cell preceded and followed by ``CELL_SEP``;
ID and waybill runs over a block of such rows joined by ``ROW_SEP``). Each pattern starts with a
literal or a character class so the engine can skip ahead in C. No pattern here contains a
literal phone-, ID- or waybill-shaped value: the shapes are built from digit classes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any, Protocol

import re2

CELL_SEP = "\x1f"  # ASCII unit separator: never produced by the readers inside a cell value
ROW_SEP = "\n"

# A value is bounded by anything that is not a letter or digit, so a longer digit run, an SKU with
# a letter prefix or a bank reference never yields a phone or an ID from its middle.

# Mainland mobile number segments (MIIT allocations incl. virtual operators and IoT-free data
# segments): 13x, 145-149, 15x without 154, 162/165-167, 170-178, 18x, 19x without 194.
# The pattern starts with the literal "1" so the engine skips to candidates in C; the left boundary
# (no letter or digit before, except a +86 / 0086 / 86 country prefix) is asserted right after it.
# The segment and the tail (with optional space/dash separators) are shared with agent/redact.py,
# which wants the same shapes with a looser left boundary.
MOBILE_SEGMENT = r"(?:3\d|4[5-9]|5[0-35-9]|6[25-7]|7[0-8]|8\d|9[0-35-9])"
MOBILE_TAIL = r"[ \-]?\d{4}[ \-]?\d{4}"
_ALNUM = "[0-9A-Za-z]"
_MOBILE_LEFT = rf"(?:(?<!{_ALNUM}1)|(?<=(?<!{_ALNUM})861)|(?<=(?<!{_ALNUM})\+861)|(?<=(?<!{_ALNUM})00861))"
MOBILE = re.compile(rf"1{_MOBILE_LEFT}{MOBILE_SEGMENT}{MOBILE_TAIL}(?![0-9])")


# Area codes: 010 and 02x are three digits, the rest 0 + three digits; local numbers are 7 or 8
# digits and never start with 0. "(0755)" is accepted. The pattern begins with a character class
# and checks the left boundary right after it, so most positions are rejected in C.
_AREA_TAIL = r"(?:10|2\d|[3-9]\d{2})"
LANDLINE = re.compile(
    rf"[0(](?<![0-9A-Za-z][0(])(?:(?<=\()0{_AREA_TAIL}\)|(?<=0){_AREA_TAIL})[ \-]?[1-9]\d{{6,7}}(?![0-9])"
)

# Resident identity number: 6-digit region (first digit 1-9), YYYYMMDD, 3-digit sequence, check
# character; matched in full against an ALNUM_RUN of 18. Checksum, region and date: valid_id_card.
ID_CARD = re.compile(r"[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx]")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_PROVINCES = frozenset(
    {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46,
     50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83, 91}
)

# Default waybill shapes of major mainland carriers. Policy may replace them. False-positive
# risk, highest first (documented in agent/exports/README.md):
#   numeric-only forms (ZTO, STO, Yunda, domestic EMS) collide with order numbers, bank references
#   and other long digit runs of the same length -> informational count only, never severity;
#   prefixed forms (SF, JD, YT, JT, UPU S10) are specific.
DEFAULT_WAYBILL_PATTERNS: tuple[str, ...] = (
    r"SF\d{12,13}",                 # SF Express
    r"JD[A-Z]{0,2}\d{11,13}",       # JD Logistics (JD, JDV, JDVA, JDX ...)
    r"YT\d{13}",                    # YTO Express
    r"JT\d{13}",                    # J&T Express
    r"[A-Z]{2}\d{9}CN",             # EMS / China Post international (UPU S10)
    r"(?:73|75|76|78)\d{10}",       # ZTO, 12 digits
    r"(?:77|88|66|55)\d{11}",       # STO, 13 digits
    r"(?:31|43|46|33)\d{13}",       # Yunda, 15 digits
    r"(?:10|11|50|51|98)\d{11}",    # EMS domestic, 13 digits
)

HAN = r"\u4e00-\u9fff"
_HAN_RE2 = "\u4e00-\u9fff"  # the characters themselves: RE2 has no \u escape
# Address: a place name ending in an administrative unit (省/市/区/县/州/盟/旗, incl. 自治区 and
# 特别行政区), up to three more units, then a street-level unit (路/街/道/巷/弄/胡同/村/镇/乡 ...) and
# optionally a house number or building (号/座/栋/幢/楼/室/单元). The match starts at the first unit
# character (a cheap class to skip to) and checks that a place name stands before it; the value
# counted is the whole cell around the match. Bounded repeats keep the worst case linear.
ADDRESS_UNITS = "省市区县州盟旗"
ADDRESS_STREET = r"(?:大道|大街|胡同|路|街|道|巷|弄|里|村|镇|乡)"
_NUMBER = r"(?:[0-9A-Za-z\-]{1,8}(?:号楼|号院|号|座|栋|幢|楼|室|单元|弄))"
_ADDRESS_BODY = (
    rf"(?:[{HAN}]{{1,12}}?[{ADDRESS_UNITS}]){{0,3}}"
    rf"[{HAN}0-9A-Za-z]{{0,16}}?{ADDRESS_STREET}(?:[{HAN}0-9]{{0,12}}?{_NUMBER})?"
)
ADDRESS = re.compile(rf"[{ADDRESS_UNITS}](?<=[{HAN}][{ADDRESS_UNITS}]){_ADDRESS_BODY}")
# The same shape for RE2, which takes time linear in the text (it has no look-behind, so a match
# starts one character earlier: callers widen a match to its cell anyway). Python's backtracking
# `re` is ~10x cheaper per call on ordinary rows, but a crafted cell of unit characters ("市市市…")
# costs it ~0.7 ms per character, so a planted file could hold up the scan of a real export.
ADDRESS_LINEAR = re2.compile(
    rf"[{_HAN_RE2}][{ADDRESS_UNITS}]{_ADDRESS_BODY.replace(HAN, _HAN_RE2)}"
)
UNIT_HEAVY = 24  # more unit characters than this in one text: two full addresses hold ~8
_UNITS_GONE = str.maketrans("", "", ADDRESS_UNITS)
# Some line of a block holds more than UNIT_HEAVY unit characters (one linear pass per block).
HEAVY_LINE = re2.compile(rf"[{ADDRESS_UNITS}](?:[^\n{ADDRESS_UNITS}]*[{ADDRESS_UNITS}]){{{UNIT_HEAVY}}}")


class Matcher(Protocol):
    """What `re.Pattern` and RE2's compiled patterns share, as the callers use it."""

    def search(self, text: str, pos: int = ..., endpos: int = ...) -> Any: ...

    def finditer(self, text: str, pos: int = ..., endpos: int = ...) -> Iterator[Any]: ...


def address_matcher(text: str) -> Matcher:
    """`ADDRESS`, or `ADDRESS_LINEAR` for text with enough unit characters to make it backtrack."""
    return ADDRESS if len(text) - len(text.translate(_UNITS_GONE)) <= UNIT_HEAVY else ADDRESS_LINEAR

# The most common surnames (they cover ~90% of the population) plus the compound ones. A cell that
# is exactly surname + 1-2 Han characters, or surname + 先生/女士, reads as a personal name.
_SURNAMES_SINGLE = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
    "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武"
    "戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮"
    "柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古"
    "吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫"
    "寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝"
)
_SURNAMES_COMPOUND = ("欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "令狐", "夏侯")
# The separator before the name is consumed (a cheap class to skip to), the one after is not.
NAME_CELL = re.compile(
    rf"[{CELL_SEP}{ROW_SEP}]((?:{'|'.join(_SURNAMES_COMPOUND)}|[{_SURNAMES_SINGLE}])"
    rf"(?:先生|女士|小姐|[{HAN}]{{1,2}}))(?=[{CELL_SEP}{ROW_SEP}])"
)


def valid_id_card(candidate: str) -> bool:
    """ISO 7064 MOD 11-2 check character, a real province code and a plausible birth date."""
    if len(candidate) != 18 or int(candidate[:2]) not in _ID_PROVINCES:
        return False
    total = sum(int(digit) * weight for digit, weight in zip(candidate[:17], _ID_WEIGHTS, strict=True))
    if _ID_CHECK[total % 11] != candidate[17].upper():
        return False
    try:
        born = date(int(candidate[6:10]), int(candidate[10:12]), int(candidate[12:14]))
    except ValueError:
        return False
    return date(1900, 1, 1) <= born <= date.today()


# Waybill and ID numbers are whole runs of letters and digits: the block is cut into such runs in C
# once, and each run is checked in full against the carrier shapes and the ID shape.
ALNUM_RUN = re.compile(r"[0-9A-Za-z]{6,}")


class WaybillPatternError(ValueError):
    """A waybill pattern from policy that does not compile."""


def compile_waybills(patterns: Sequence[str] | None) -> re.Pattern[str]:
    """One alternation of all carrier shapes, matched against whole letter/digit runs (fullmatch).

    A policy pattern therefore describes an entire waybill number: letters and digits only.
    """
    chosen = DEFAULT_WAYBILL_PATTERNS if patterns is None else tuple(patterns)
    if not chosen:
        return re.compile(r"(?!x)x")  # matches nothing: policy switched waybill counting off
    for index, pattern in enumerate(chosen):
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise WaybillPatternError(f"waybill_patterns[{index}]: not a valid regex ({exc}): {pattern!r}") from exc
        if compiled.match(""):
            raise WaybillPatternError(f"waybill_patterns[{index}]: matches the empty string: {pattern!r}")
    return re.compile("|".join(f"(?:{pattern})" for pattern in chosen))
