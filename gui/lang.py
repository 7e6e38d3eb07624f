"""Which language the tray speaks (Qt-free): --lang, then $TG_LANG, then the OS locale.

Chinese (zh_CN) is the default: outlet PCs are in China, and a PC whose locale says nothing
useful ("C", "POSIX", a language we do not ship) should still greet staff in Chinese. English is
chosen only when asked for or when the OS locale is English.
"""

from __future__ import annotations

ZH_CN = "zh_CN"
EN = "en"
LANGUAGES = (ZH_CN, EN)
LANG_ENV = "TG_LANG"


def normalize(name: str | None) -> str | None:
    """A shipped language for a locale-ish name ("en_US.UTF-8", "zh-CN", "zh"), else None."""
    if not name:
        return None
    base = name.strip().split(".")[0].split("@")[0].replace("-", "_").lower()
    if base == "en" or base.startswith("en_"):
        return EN
    if base == "zh" or base in ("zh_cn", "zh_hans", "zh_sg") or base.startswith("zh_hans"):
        return ZH_CN
    return None


def choose_language(override: str | None, env_value: str | None, system_locale: str) -> str:
    for candidate in (override, env_value, system_locale):
        chosen = normalize(candidate)
        if chosen is not None:
            return chosen
    return ZH_CN
