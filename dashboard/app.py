"""moodstream dashboard entry point: ``streamlit run dashboard/app.py`` (or ``moodstream dashboard``)."""

from __future__ import annotations

import streamlit as st

from dashboard import auth, ui

st.set_page_config(page_title="moodstream", page_icon=":material/monitoring:", layout="wide")

if not auth.authenticated():
    # Only the login page exists until the password is given; no page, sidebar or data is reachable.
    st.navigation([st.Page(auth.login_page, title="Log in", url_path="login")], position="hidden").run()
    st.stop()

PAGES = [
    st.Page("views/trends.py", title="Trends", icon=":material/monitoring:", url_path="trends", default=True),
    st.Page("views/emotions.py", title="Emotions", icon=":material/mood:", url_path="emotions"),
    st.Page("views/hashtags.py", title="Hashtags", icon=":material/tag:", url_path="hashtags"),
    st.Page("views/posts.py", title="Posts", icon=":material/photo_library:", url_path="posts"),
    st.Page("views/alerts.py", title="Alerts", icon=":material/notifications_active:", url_path="alerts"),
    st.Page("views/pipeline.py", title="Pipeline", icon=":material/settings_suggest:", url_path="pipeline"),
]
page = st.navigation(PAGES)
ui.sidebar_controls()
if auth.required():
    st.sidebar.button("Log out", on_click=auth.logout)
page.run()
