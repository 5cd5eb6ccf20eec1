"""The embedded local stack: Cloud Run Admin API, Cloud Logging API and Cloud Monitoring API emulators
on loopback that run a service command as a revision, ship its output to the log store and serve
what it observes as Cloud Run's metrics."""
