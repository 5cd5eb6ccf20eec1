"""Cloud Logging: the log-line catalogue (patterns), the lines read (lines, source, pages), one read
pacer with one 429 policy (pacing), the watcher the checks wait on (watcher, expectations, reads, explain), and
the 404 diagnosis from request logs (diagnosis)."""
