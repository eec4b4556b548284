"""One Streamlit page per module, run as scripts by ``st.navigation`` in ``dashboard/app.py``.

Not named ``pages/``: Streamlit treats a ``pages/`` folder beside the entry script as a legacy multipage app and
may run a page script directly on the first run of a server, which would bypass the password gate in ``app.py``."""
