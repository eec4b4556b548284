"""Optional password gate (``MOODSTREAM_DASHBOARD_PASSWORD``): when set, nothing is shown before login."""

from __future__ import annotations

import hmac

import streamlit as st

from moodstream.config import get_settings

_KEY = "_moodstream_authenticated"


def required() -> bool:
    """Whether a password is configured."""
    pw = get_settings().dashboard_password
    return pw is not None and bool(pw.get_secret_value())


def check(given: str) -> bool:
    """Constant-time comparison with the configured password."""
    pw = get_settings().dashboard_password
    if pw is None:
        return True
    return hmac.compare_digest(given.encode("utf-8"), pw.get_secret_value().encode("utf-8"))


def authenticated() -> bool:
    """True when no password is set or this session has logged in."""
    return not required() or bool(st.session_state.get(_KEY))


def login_page() -> None:
    """The only page shown before login."""
    st.title("moodstream")
    with st.form("login"):
        given = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Log in")
    if submitted:
        if check(given):
            st.session_state[_KEY] = True
            st.rerun()
        st.error("Wrong password.")


def logout() -> None:
    st.session_state.pop(_KEY, None)
