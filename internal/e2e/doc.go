// Package e2e holds Regent's end-to-end tests: the regent binary, built
// once per test run, runs real PostgreSQL members against an embedded etcd
// on 127.0.0.1, and the tests kill, restart and inspect real processes.
package e2e
