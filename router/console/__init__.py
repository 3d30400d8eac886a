"""`router console`: a read-only web page for people, on its own port, that answers "why was
(or wasn't) this meeting recorded?" from the topics, and follows them live."""
