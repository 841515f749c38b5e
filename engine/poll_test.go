package engine

import (
	"testing"
	"time"
)

// The readiness schedule: a passing check is seen within 5 % of the time
// the instance took (4 % plus the poll), never sooner than the floor of
// its kind of backend, never later than PollMax.
func TestPollDelay(t *testing.T) {
	e := New(nil, Options{})
	ms := time.Millisecond
	for _, c := range []struct {
		elapsed time.Duration
		near    bool
		want    time.Duration
	}{
		{0, true, 5 * ms},
		{100 * ms, true, 5 * ms},
		{500 * ms, true, 20 * ms},
		{2 * time.Second, true, 80 * ms},
		{time.Minute, true, 2400 * ms},
		{time.Hour, true, 3 * time.Second},
		{0, false, 200 * ms},
		{2 * time.Second, false, 200 * ms},
		{10 * time.Second, false, 400 * ms},
		{time.Hour, false, 3 * time.Second},
	} {
		if got := e.pollDelay(c.elapsed, c.near); got != c.want {
			t.Errorf("pollDelay(%s, nearby=%v) = %s, want %s", c.elapsed, c.near, got, c.want)
		}
	}
	// Setting only PollFirst keeps its old meaning for every backend.
	e = New(nil, Options{PollFirst: 50 * ms})
	if got := e.pollDelay(0, false); got != 50*ms {
		t.Errorf("remote floor with only PollFirst set: %s, want 50ms", got)
	}
}
