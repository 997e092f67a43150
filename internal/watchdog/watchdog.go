// Package watchdog drives a Linux kernel watchdog (/dev/watchdog): once
// opened, the machine resets unless the device is fed before its timeout.
// The agent feeds it only right after a confirmed lease renewal, so a leader
// whose agent stalls is reset before its lease can expire.
package watchdog

import (
	"fmt"
	"math"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Modes of the watchdog configuration.
const (
	ModeOff       = "off"       // never open the device
	ModeAutomatic = "automatic" // use it when it can be opened, else rely on the fence process
	ModeRequired  = "required"  // do not lead without it
)

// ioctl requests of linux/watchdog.h: _IOR('W', 5, int), _IOWR('W', 6, int)
// and _IOR('W', 7, int).
const (
	wdiocKeepalive  = 0x80045705
	wdiocSetTimeout = 0xC0045706
	wdiocGetTimeout = 0x80045707
)

// Device is an open watchdog.
type Device struct {
	f       *os.File
	timeout time.Duration
}

// Timeout derives the watchdog timeout from the lease arithmetic
// (reliability inequality (2)): the device is fed at most retry_timeout
// after the send time s of a confirmed renewal, and must reset the machine
// before etcd can expire the lease, TTL·(1−ε) after s, less the safety
// margin. Whole seconds, at least one.
func Timeout(ttl, retryTimeout time.Duration, clockDrift, safetyMargin float64) time.Duration {
	budget := ttl.Seconds()*(1-clockDrift) - safetyMargin - retryTimeout.Seconds()
	return time.Duration(max(1, math.Floor(budget))) * time.Second
}

// Open opens path and sets its timeout. The device starts counting at once.
func Open(path string, timeout time.Duration) (*Device, error) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("watchdog: open %s: %w (load a driver, e.g. modprobe softdog, or set watchdog.mode: off)", path, err)
	}
	d := &Device{f: f}
	secs := int32(timeout / time.Second)
	if err := d.ioctl(wdiocSetTimeout, &secs); err != nil {
		d.Close()
		return nil, fmt.Errorf("watchdog: %s does not accept a %s timeout: %w", path, timeout, err)
	}
	var got int32
	if err := d.ioctl(wdiocGetTimeout, &got); err == nil && got > 0 {
		secs = got
	}
	d.timeout = time.Duration(secs) * time.Second
	if d.timeout > timeout {
		d.Close()
		return nil, fmt.Errorf("watchdog: %s uses a %s timeout, longer than the %s the lease allows", path, d.timeout, timeout)
	}
	return d, nil
}

// SetTimeout changes the timeout; like a feed, it restarts the countdown,
// so call it only where a feed is allowed (after a confirmed renewal).
func (d *Device) SetTimeout(timeout time.Duration) error {
	secs := int32(timeout / time.Second)
	if err := d.ioctl(wdiocSetTimeout, &secs); err != nil {
		return fmt.Errorf("watchdog: set a %s timeout: %w", timeout, err)
	}
	var got int32
	if err := d.ioctl(wdiocGetTimeout, &got); err == nil && got > 0 {
		secs = got
	}
	d.timeout = time.Duration(secs) * time.Second
	if d.timeout > timeout {
		return fmt.Errorf("watchdog: the device uses a %s timeout, longer than the %s the lease allows", d.timeout, timeout)
	}
	return nil
}

// Feed resets the countdown.
func (d *Device) Feed() error {
	var dummy int32
	if err := d.ioctl(wdiocKeepalive, &dummy); err != nil {
		// Drivers without the ioctl accept any write as a keepalive.
		if _, werr := d.f.Write([]byte{0}); werr != nil {
			return fmt.Errorf("watchdog: keepalive: %w", err)
		}
	}
	return nil
}

// Timeout is the device's effective timeout.
func (d *Device) Timeout() time.Duration { return d.timeout }

// Close disarms the watchdog with the magic close ("V") and closes it.
func (d *Device) Close() error {
	_, _ = d.f.Write([]byte("V"))
	return d.f.Close()
}

func (d *Device) ioctl(req uintptr, arg *int32) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, d.f.Fd(), req, uintptr(unsafe.Pointer(arg)))
	if errno != 0 {
		return errno
	}
	return nil
}
