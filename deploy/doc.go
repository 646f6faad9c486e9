// Package deploy holds no code: its directory holds the files that deploy
// Meridian, and its tests check them offline.
//
//   - prometheus/: alert rules (alerts.yml), their promtool unit tests
//     (alerts_test.yml) and a scrape configuration (prometheus.yml);
//   - grafana/: the dashboard (meridian.json) and provisioning;
//   - systemd/: units for meridian and meridian-checker, with example
//     configuration and environment files;
//   - compose/: the configuration and zone of the docker-compose.yml demo;
//   - docker/: the container image's default configuration and httpprobe,
//     its health check command.
//
// The tests run promtool (check and unit-test the rules, check the scrape
// configuration and every query of the dashboard), systemd-analyze verify,
// the Compose specification's loader and Meridian's own zone loader and
// "meridian check", and check that every metric named anywhere here is in
// docs/metrics.md. What they cannot do without a Docker daemon, build the
// image and run the demo, is left to CI with one.
package deploy
