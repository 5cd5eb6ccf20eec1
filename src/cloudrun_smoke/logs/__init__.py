"""Cloud Logging: the log-line catalogue, paced page reads, the watcher the checks wait on."""
