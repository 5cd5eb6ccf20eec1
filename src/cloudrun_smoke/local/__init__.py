"""The embedded local stack: Cloud Run Admin API and Cloud Logging API emulators on loopback that
run a service command as a revision and ship its output to the log store."""
