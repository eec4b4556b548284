"""Optional password gate (``MOODSTREAM_DASHBOARD_PASSWORD``): when set, nothing is shown before login.

The password is compared in constant time (``hmac.compare_digest`` of SHA-256 digests: not even its length
leaks), and failed attempts slow the next ones down per client (``dashboard.login_throttle``).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import uuid

import streamlit as st

from dashboard.login_throttle import LoginThrottle
from moodstream.config import get_settings

_KEY = "_moodstream_authenticated"
THROTTLE = LoginThrottle()  # one per dashboard process, shared by its sessions


def required() -> bool:
    """Whether a password is configured."""
    pw = get_settings().dashboard_password
    return pw is not None and bool(pw.get_secret_value())


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


def check(given: str) -> bool:
    """Constant-time comparison with the configured password."""
    pw = get_settings().dashboard_password
    if pw is None:
        return True
    return hmac.compare_digest(_digest(given), _digest(pw.get_secret_value()))


def client_key() -> str:
    """Who is logging in: the client's address when Streamlit knows it, else this browser session."""
    ip = getattr(st.context, "ip_address", None)
    if isinstance(ip, str) and ip:  # (a test runner may give a stand-in object)
        return f"ip:{ip}"
    return f"session:{st.session_state.setdefault('_moodstream_login_key', uuid.uuid4().hex)}"


def authenticated() -> bool:
    """True when no password is set or this session has logged in."""
    return not required() or bool(st.session_state.get(_KEY))


def login_page() -> None:
    """The only page shown before login."""
    st.title("moodstream")
    with st.form("login"):
        given = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Log in")
    if not submitted:
        return
    key = client_key()
    wait = THROTTLE.wait_s(key)
    if wait > 0:  # not even checked while the gate is closed
        st.error(f"Too many failed attempts. Try again in {math.ceil(wait)} s.")
        return
    if check(given):
        THROTTLE.succeeded(key)
        st.session_state[_KEY] = True
        st.rerun()
    delay = THROTTLE.failed(key)
    st.error("Wrong password.")
    if delay:
        st.warning(f"Too many failed attempts: the next one is possible in {math.ceil(delay)} s.")


def logout() -> None:
    st.session_state.pop(_KEY, None)
