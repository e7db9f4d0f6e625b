package control_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/certd-dev/certd/control"
	"github.com/certd-dev/certd/internal/pipeline"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// memKB reads a field (VmRSS, VmHWM) of /proc/self/status in KiB.
func memKB(t *testing.T, field string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + field + `:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no %s in /proc/self/status", field)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// resetPeakRSS makes VmHWM start again from the current RSS (Linux
// clear_refs); it reports whether that worked.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

func heapInuseMB() float64 {
	runtime.GC()
	runtime.GC() // sync.Pool buffers survive one cycle
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapInuse) / (1 << 20)
}

// bigSubmit is a 4 MB request, the gRPC default receive limit.
var bigSubmit = &certdv1.SubmitRequest{Username: "x", CourseId: "course-v1:A+B+C", Name: strings.Repeat("A", 4<<20)}

// bigBody is bigSubmit encoded once: attackers send it as it is, so the
// memory measured is the server's, not the attacking client's.
var bigBody, _ = proto.Marshal(bigSubmit)

// rawCodec sends []byte messages as they are and reads answers into
// nothing.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.([]byte), nil }
func (rawCodec) Unmarshal([]byte, any) error   { return nil }
func (rawCodec) Name() string                  { return "proto" }

// attack sends bigBody to Submit without a token.
func attack(ctx context.Context, conn *grpc.ClientConn) error {
	var out []byte
	return conn.Invoke(ctx, "/certd.v1.Control/Submit", bigBody, &out, grpc.ForceCodec(rawCodec{}))
}

// TestUnauthenticatedBigCallsAreNotRead sends 400 unauthenticated 4 MB
// calls, 8 at a time: each is refused when its headers arrive, so the
// server reads none of the bodies and its memory stays flat. An
// authenticated call over the receive limit is refused too, and a Requeue
// naming the most ids a call may name fits.
func TestUnauthenticatedBigCallsAreNotRead(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	attacker, err := grpc.NewClient(e.srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()

	heapBefore := heapInuseMB()
	rssBefore := memKB(t, "VmRSS")
	peakReset := resetPeakRSS()
	const calls, par = 400, 8
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for w := 0; w < par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < calls/par; i++ {
				errs <- attack(ctx, attacker)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("unauthenticated 4 MB call: %v, want Unauthenticated", err)
		}
	}
	heapAfter := heapInuseMB()
	rssAfter, peak := memKB(t, "VmRSS"), memKB(t, "VmHWM")
	t.Logf("%d unauthenticated 4 MB calls: heap in use %.1f -> %.1f MB; RSS %d -> %d MB, peak %d MB (peak reset: %v)",
		calls, heapBefore, heapAfter, rssBefore>>10, rssAfter>>10, peak>>10, peakReset)
	if heapAfter-heapBefore > 32 {
		t.Errorf("heap grew by %.1f MB after refused calls", heapAfter-heapBefore)
	}
	if peakReset && (peak-rssBefore)>>10 > 64 {
		t.Errorf("peak RSS rose by %d MB during refused calls", (peak-rssBefore)>>10)
	}

	// With the token: over the receive limit is refused, the largest real
	// request fits.
	_, err = e.client.Submit(authed(t), bigSubmit)
	wantCode(t, err, codes.ResourceExhausted, "")
	ids := make([]string, control.MaxIDs)
	for i := range ids {
		ids[i] = fmt.Sprintf("sub-%032x", i)
	}
	resp, err := e.client.Requeue(authed(t), &certdv1.RequeueRequest{Ids: ids, DryRun: true})
	if err != nil {
		t.Fatalf("Requeue of %d ids: %v", len(ids), err)
	}
	if len(resp.GetSkipped()) != len(ids) {
		t.Errorf("Requeue of unknown ids skipped %d, want %d", len(resp.GetSkipped()), len(ids))
	}
}

// TestRefusalArrivesBeforeTheBody speaks HTTP/2 by hand: it sends the
// headers of an unauthenticated call without ending the stream and gets
// the Unauthenticated status back before it has sent a byte of the body.
func TestRefusalArrivesBeforeTheBody(t *testing.T) {
	e := newEnv(t)
	conn, err := net.DialTimeout("tcp", e.srv.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, bufio.NewReader(conn))
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{
		{":method", "POST"}, {":scheme", "http"}, {":path", "/certd.v1.Control/Submit"},
		{":authority", "control"}, {"content-type", "application/grpc"}, {"te", "trailers"},
	} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	// No DATA frame is sent: the answer must come without the body.
	dec := hpack.NewDecoder(4096, nil)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("no answer before the body: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			if f.StreamID != 1 {
				continue
			}
			fields, err := dec.DecodeFull(f.HeaderBlockFragment())
			if err != nil {
				t.Fatal(err)
			}
			for _, hf := range fields {
				if hf.Name == "grpc-status" {
					if hf.Value != strconv.Itoa(int(codes.Unauthenticated)) {
						t.Fatalf("grpc-status %s, want %d (Unauthenticated)", hf.Value, codes.Unauthenticated)
					}
					return
				}
			}
		case *http2.RSTStreamFrame:
			t.Fatalf("stream reset (%v) without a status", f.ErrCode)
		}
	}
}

// TestRefusedCallsAreLoggedWithRateLimit makes 5,000 refused calls: they
// are logged as a handful of lines whose counts add up to 5,000.
func TestRefusedCallsAreLoggedWithRateLimit(t *testing.T) {
	e := newEnvOn(t, startPipeline(t, pipeline.Options{}), control.ServerConfig{Token: token, DenyLogInterval: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bad := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer not-the-token-at-all")
	const calls, par = 5000, 10
	var wg sync.WaitGroup
	for w := 0; w < par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < calls/par; i++ {
				if _, err := e.client.GetStatus(bad, &certdv1.GetStatusRequest{}); status.Code(err) != codes.Unauthenticated {
					t.Errorf("refused call: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	e.stop() // logs what is still counted
	lines, sum := 0, 0
	re := regexp.MustCompile(`msg="control calls denied" .*\bcount=(\d+)`)
	for _, l := range strings.Split(e.logs.String(), "\n") {
		if m := re.FindStringSubmatch(l); m != nil {
			lines++
			n, _ := strconv.Atoi(m[1])
			sum += n
		}
	}
	t.Logf("%d refused calls logged as %d lines", calls, lines)
	if sum != calls {
		t.Errorf("counts of the refusal lines add up to %d, want %d", sum, calls)
	}
	if lines > 100 {
		t.Errorf("%d lines for %d refused calls; want a handful", lines, calls)
	}
	if strings.Contains(e.logs.String(), "not-the-token-at-all") {
		t.Error("a presented token was logged")
	}
}

// stalledConn is a client connection with a fixed 64 KiB window, whose
// watch streams are never read.
func stalledConn(t *testing.T, addr string) certdv1.ControlClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return certdv1.NewControlClient(conn)
}

// TestSlowWatcherEnds opens watchers that never read and makes changes
// until they fall behind: each ends with ResourceExhausted "watcher too
// slow" (seen once the client reads again), streams beyond the cap are
// refused, and the service keeps answering.
func TestSlowWatcherEnds(t *testing.T) {
	e := newEnvOn(t, startPipeline(t, pipeline.Options{}), control.ServerConfig{Token: token},
		control.WithWatchLimits(2, 64, 32<<10))
	ctx := authed(t)
	var streams []grpc.ServerStreamingClient[certdv1.JobEvent]
	for i := 0; i < 2; i++ {
		s, err := stalledConn(t, e.srv.Addr().String()).WatchJobs(ctx, &certdv1.WatchJobsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Header(); err != nil { // the watch is live
			t.Fatal(err)
		}
		streams = append(streams, s)
	}
	third, err := e.client.WatchJobs(ctx, &certdv1.WatchJobsRequest{})
	if err == nil {
		_, err = third.Recv()
	}
	wantCode(t, err, codes.ResourceExhausted, "too many")

	// Change jobs until both stalled watchers have been ended.
	n := 0
	for ; n < 5000 && strings.Count(e.logs.String(), "the client reads too slowly") < 2; n++ {
		put(t, e.p, rec{id: fmt.Sprintf("xq-%d", n+1)})
	}
	if got := strings.Count(e.logs.String(), "the client reads too slowly"); got < 2 {
		t.Fatalf("after %d jobs, %d stalled watchers were ended, want 2", n, got)
	}
	t.Logf("stalled watchers ended after %d jobs", n)
	for i, s := range streams {
		var got int
		for {
			_, err := s.Recv()
			if err != nil {
				wantCode(t, err, codes.ResourceExhausted, "watcher too slow")
				break
			}
			got++
		}
		t.Logf("stalled watcher %d read %d events before its end", i, got)
	}
	// The slots are free again; a reading watcher sees new changes.
	w, err := e.client.WatchJobs(ctx, &certdv1.WatchJobsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Header(); err != nil {
		t.Fatal(err)
	}
	put(t, e.p, rec{id: "xq-after"})
	for {
		ev, err := w.Recv()
		if err != nil {
			t.Fatalf("watch after the slow ones ended: %v", err)
		}
		if ev.GetId() == "xq-after" {
			break
		}
	}
}
