package control_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/certd-dev/certd/control"
	"github.com/certd-dev/certd/internal/pipeline"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	bare, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	with := func(v string) context.Context { return metadata.AppendToOutgoingContext(bare, "authorization", v) }

	const wrong = "tok-0000000000000000"
	for name, ctx := range map[string]context.Context{
		"no header":   bare,
		"wrong token": with("Bearer " + wrong),
		"basic auth":  with("Basic " + token),
		"bare token":  with(token),
		"longer":      with("Bearer " + token + "x"),
		"prefix":      with("Bearer " + token[:len(token)-1]),
	} {
		_, err := e.client.GetStatus(ctx, &certdv1.GetStatusRequest{})
		if err == nil {
			t.Errorf("%s: GetStatus allowed", name)
			continue
		}
		wantCode(t, err, codes.Unauthenticated, "Bearer")
	}
	// Streams are guarded too.
	stream, err := e.client.WatchJobs(with("Bearer "+wrong), &certdv1.WatchJobsRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	wantCode(t, err, codes.Unauthenticated, "")

	// The right token works, with any case of "Bearer".
	if _, err := e.client.GetStatus(with("bearer "+token), &certdv1.GetStatusRequest{}); err != nil {
		t.Errorf("right token refused: %v", err)
	}

	// Health needs no token.
	hc := healthpb.NewHealthClient(e.conn)
	for _, svc := range []string{"", "certd.v1.Control"} {
		resp, err := hc.Check(bare, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q = %v, %v; want SERVING without a token", svc, resp, err)
		}
	}

	// Reflection (grpcurl list/describe) needs the token like every other
	// call; grpcurl sends its -H headers with reflection requests.
	list := func(ctx context.Context) ([]string, error) {
		rc, err := reflectionpb.NewServerReflectionClient(e.conn).ServerReflectionInfo(ctx)
		if err != nil {
			return nil, err
		}
		// A refused stream may already be closed when we send (io.EOF);
		// Recv then returns the status.
		if err := rc.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		resp, err := rc.Recv()
		if err != nil {
			return nil, err
		}
		var names []string
		for _, s := range resp.GetListServicesResponse().GetService() {
			names = append(names, s.Name)
		}
		return names, rc.CloseSend()
	}
	if _, err := list(bare); status.Code(err) != codes.Unauthenticated {
		t.Errorf("reflection without a token: %v, want Unauthenticated", err)
	}
	names, err := list(with("Bearer " + token))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"certd.v1.Control", "grpc.health.v1.Health"} {
		if !slices.Contains(names, want) {
			t.Errorf("reflection lists %v, want %s", names, want)
		}
	}

	// Refusals are logged (rate-limited: the first at once, the rest
	// counted; stopping logs what is counted), never with a token.
	e.stop()
	logs := e.logs.String()
	if !strings.Contains(logs, "control calls denied") || !strings.Contains(logs, "/certd.v1.Control/") ||
		!strings.Contains(logs, "reason=") {
		t.Errorf("denied calls not logged:\n%s", logs)
	}
	if strings.Contains(logs, wrong) || strings.Contains(logs, token) {
		t.Errorf("a token was logged:\n%s", logs)
	}
}

func TestListenWithoutTokenOnlyOnLoopback(t *testing.T) {
	p := startPipeline(t, pipeline.Options{})
	svc := control.NewService(p)
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0", "example.org:0"} {
		_, err := control.Listen(addr, svc, control.ServerConfig{})
		if !errors.Is(err, control.ErrNoTokenNotLoopback) {
			t.Errorf("Listen(%q) without token: %v, want ErrNoTokenNotLoopback", addr, err)
		}
	}
	l, err := control.Listen("localhost:0", svc, control.ServerConfig{})
	if err != nil {
		t.Fatalf("localhost without token: %v", err)
	}
	if ip := l.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
		t.Errorf("localhost bound %s", ip)
	}

	// Without a token, local calls need no header, and the start says so.
	e := newEnvOn(t, p, control.ServerConfig{})
	if _, err := e.client.PauseIntake(context.Background(), &certdv1.PauseIntakeRequest{}); err != nil {
		t.Errorf("call without token on loopback: %v", err)
	}
	if !strings.Contains(e.logs.String(), "no token") {
		t.Errorf("start did not say there is no token:\n%s", e.logs)
	}
	l.Close() // never served

	_, err = control.Listen("127.0.0.1:0", svc, control.ServerConfig{Token: token, TLSCert: "cert.pem"})
	if err == nil || !strings.Contains(err.Error(), "both") {
		t.Errorf("TLS cert without key: %v", err)
	}
	_, err = control.Listen("127.0.0.1:0", svc, control.ServerConfig{Token: "has space"})
	if err == nil {
		t.Error("token with a space accepted")
	}

	// A short token is refused beyond loopback, and allowed on loopback.
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:0"} {
		if _, err := control.Listen(addr, svc, control.ServerConfig{Token: "short-tok-15byt"}); !errors.Is(err, control.ErrShortToken) {
			t.Errorf("Listen(%q) with a 15-byte token: %v, want ErrShortToken", addr, err)
		}
	}
	short, err := control.Listen("127.0.0.1:0", svc, control.ServerConfig{Token: "short"})
	if err != nil {
		t.Errorf("short token on loopback: %v", err)
	} else {
		short.Close()
	}
}

func TestTLS(t *testing.T) {
	p := startPipeline(t, pipeline.Options{})
	certFile, keyFile, pool := selfSigned(t)
	e := newEnvOn(t, p, control.ServerConfig{Token: token, TLSCert: certFile, TLSKey: keyFile})

	conn, err := grpc.NewClient(e.srv.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := certdv1.NewControlClient(conn).GetStatus(authed(t), &certdv1.GetStatusRequest{}); err != nil {
		t.Errorf("call over TLS: %v", err)
	}
	// A plaintext client gets nowhere.
	plain, err := grpc.NewClient(e.srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	ctx, cancel := context.WithTimeout(authed(t), 5*time.Second)
	defer cancel()
	if _, err := certdv1.NewControlClient(plain).GetStatus(ctx, &certdv1.GetStatusRequest{}); err == nil {
		t.Error("plaintext call to a TLS server succeeded")
	}
	if _, err := control.Listen("127.0.0.1:0", e.svc, control.ServerConfig{TLSCert: keyFile, TLSKey: certFile}); err == nil {
		t.Error("swapped TLS files accepted")
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "certd control test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
