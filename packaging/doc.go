// Package packaging holds what installs Regent as a system service: the
// systemd unit (systemd/regent@.service) and, built by scripts/build-deb,
// the Debian package. It has no Go code; its tests check both.
package packaging
