package bridge

import "time"

// WithoutIntakeLock makes the bridge pull without holding the intake lock.
// Only tests use it, to show that their assertions catch a bypassed lock.
func WithoutIntakeLock() Option { return func(b *Bridge) { b.noLock = true } }

// ID is the bridge's intake lock holder id.
func (b *Bridge) ID() string { return b.holderID }

// WithSourceChecks sets how often the relays' worker pools look their
// consumers up (default 5 s), so that a test sees a deleted one soon.
func WithSourceChecks(every time.Duration) Option { return func(b *Bridge) { b.checkEvery = every } }
