package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/certd-dev/certd/internal/credential"
	"github.com/certd-dev/certd/internal/statuslist"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// jsverify is the reference JavaScript verifier harness (install it with
// its install.sh).
var jsverify = filepath.Join("..", "..", "internal", "credential", "testdata", "jsverify")

type jsResult struct {
	File     string `json:"file"`
	Verified bool   `json:"verified"`
	Revoked  bool   `json:"revoked"`
	Error    string `json:"error"`
}

// runJSVerifier runs the reference verifier on credentials, with the DID
// document and status list as certd stored them (served to it offline).
func runJSVerifier(t *testing.T, ctx context.Context, did string, didDoc []byte, listURL string, list []byte, creds map[string][]byte) map[string]jsResult {
	t.Helper()
	var out struct {
		Results []jsResult `json:"results"`
	}
	runHarness(t, ctx, "verify.mjs", did, didDoc, listURL, list, creds, &out)
	res := map[string]jsResult{}
	for _, r := range out.Results {
		res[r.File] = r
	}
	return res
}

// runWallet runs the Learner Credential Wallet's verifier library on
// credentials (its fetches of the DID document and status list served from
// certd's files) and returns each credential's checks by id.
func runWallet(t *testing.T, ctx context.Context, did string, didDoc []byte, listURL string, list []byte, creds map[string][]byte) map[string]map[string]bool {
	t.Helper()
	var out struct {
		Results []struct {
			File string `json:"file"`
			Log  []struct {
				ID    string `json:"id"`
				Valid bool   `json:"valid"`
			} `json:"log"`
		} `json:"results"`
	}
	runHarness(t, ctx, "wallet.mjs", did, didDoc, listURL, list, creds, &out)
	res := map[string]map[string]bool{}
	for _, r := range out.Results {
		res[r.File] = map[string]bool{}
		for _, l := range r.Log {
			res[r.File][l.ID] = l.Valid
		}
	}
	return res
}

func runHarness(t *testing.T, ctx context.Context, script, did string, didDoc []byte, listURL string, list []byte, creds map[string][]byte, out any) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node is not installed: the reference verifier needs Node.js >= 18 (apt-get install nodejs npm)")
	}
	if _, err := os.Stat(filepath.Join(jsverify, "node_modules", "@digitalbazaar", "vc")); err != nil {
		t.Fatal("the reference JavaScript verifier is not installed: run internal/credential/testdata/jsverify/install.sh")
	}
	dir := t.TempDir()
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("did.json", didDoc)
	write("list.json", list)
	var names []string
	for name, b := range creds {
		write(name, b)
		names = append(names, name)
	}
	ctxFiles := map[string]string{}
	for i, u := range credential.PinnedContextURLs() {
		b, _ := credential.PinnedContext(u)
		name := "pinned-" + string(rune('a'+i)) + ".json"
		write(name, b)
		ctxFiles[u] = name
	}
	didURL, err := credential.DIDWebDocumentURL(did)
	if err != nil {
		t.Fatal(err)
	}
	manifest, _ := json.Marshal(map[string]any{
		"documents":   map[string]string{did: "did.json", listURL: "list.json"},
		"web":         map[string]string{didURL: "did.json", listURL: "list.json"},
		"contexts":    ctxFiles,
		"credentials": names,
		"now":         time.Now().UTC().Format(time.RFC3339),
	})
	write("manifest.json", manifest)
	abs, _ := filepath.Abs(jsverify)
	cmd := exec.CommandContext(ctx, "node", filepath.Join(abs, script), filepath.Join(dir, "manifest.json"))
	cmd.Dir = abs
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\n%s", script, err, stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		t.Fatalf("%s output: %v\n%s", script, err, stdout.String())
	}
}

// waitPublished waits, event by event ("status list published" lines of
// the process), until the published list at path has every index set.
func waitPublished(t *testing.T, ctx context.Context, b *background, path string, indexes ...int) []byte {
	t.Helper()
	for {
		n := b.errOut.count("status list published")
		list, err := os.ReadFile(path)
		if err == nil {
			bits, err := statuslist.ParseCredential(list)
			if err != nil {
				t.Fatalf("published list: %v", err)
			}
			all := true
			for _, i := range indexes {
				if set, _ := bits.Get(i); !set {
					all = false
				}
			}
			if all {
				return list
			}
		}
		if err := b.errOut.waitFor(ctx, "status list published", n+1); err != nil {
			t.Fatalf("the published revocation list never caught up with bits %v: %v", indexes, err)
		}
	}
}

type issued struct {
	job, verify string
	cred        []byte
	index       int
}

// submitAndWait submits create jobs for names and waits until each is
// answered; it returns them with their stored credentials.
func submitAndWait(t *testing.T, ctx context.Context, cl certdv1.ControlClient, www string, names ...string) []issued {
	t.Helper()
	watch, err := cl.WatchJobs(ctx, &certdv1.WatchJobsRequest{}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Header(); err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	for i, n := range names {
		sub, err := cl.Submit(ctx, &certdv1.SubmitRequest{
			Action: certdv1.Action_ACTION_CREATE, Username: "u" + n[:3], CourseId: "course-v1:edX+DemoX+Demo_Course",
			CourseName: "Demonstration Course", Name: n, Grade: "Pass",
		})
		if err != nil {
			t.Fatal(err)
		}
		ids[sub.Id] = i
	}
	out := make([]issued, len(names))
	for left := len(names); left > 0; {
		ev, err := watch.Recv()
		if err != nil {
			t.Fatalf("watch: %v", err)
		}
		i, ok := ids[ev.Id]
		if !ok || ev.State != certdv1.JobState_JOB_STATE_ANSWERED || out[i].job != "" {
			continue
		}
		if !ev.Job.AnswerOk {
			t.Fatalf("job %s: %s", ev.Id, ev.Job.ErrorReason)
		}
		cred, err := os.ReadFile(filepath.Join(www, "cert", ev.Job.VerifyUuid, "credential.json"))
		if err != nil {
			t.Fatalf("job %s stored no credential: %v", ev.Id, err)
		}
		_, idx, err := credential.StatusOf(cred)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = issued{job: ev.Id, verify: ev.Job.VerifyUuid, cred: cred, index: idx}
		left--
	}
	return out
}

// End to end with real components: `certd all` (embedded NATS, file
// storage served by its HTTP server) issues a credential beside a
// certificate; the reference JavaScript verifier accepts it with the DID
// document and revocation list certd stored, and refuses it with a byte
// changed; `certd verify --url` says VALID. Revoke (through gRPC, with the
// token) then sets the bit without deleting anything: once the published
// list catches up, `certd verify --url` says REVOKED, valid.html says
// revoked with the reason, and the JavaScript verifier sees the bit set.
// Concurrent Revoke calls never lose each other.
func TestCredentialEndToEnd(t *testing.T) {
	clearCertdEnv(t)
	dataDir := t.TempDir()
	httpAddr, grpcAddr := freeAddr(t), freeAddr(t)
	const token = "credential-test-token-0123456789abcdef"
	all := runBackground(t, "all", "--data-dir", dataDir, "--http-addr", httpAddr, "--grpc-addr", grpcAddr, "--control-token", token)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	www := filepath.Join(dataDir, "www")
	cl := controlClient(t, grpcAddr)
	actx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)

	certs := submitAndWait(t, actx, cl, www, "Ana Lima", "Bea Souza", "Caio Dias", "Dora Reis")
	ana := certs[0]
	did := "did:web:" + strings.ReplaceAll(httpAddr, ":", "%3A")
	didDoc, err := os.ReadFile(filepath.Join(www, ".well-known", "did.json"))
	if err != nil {
		t.Fatalf("DID document not published: %v", err)
	}
	var cv struct {
		Issuer struct {
			ID, Name string
		} `json:"issuer"`
		CredentialStatus struct {
			StatusListCredential string `json:"statusListCredential"`
		} `json:"credentialStatus"`
		RelatedResource []struct {
			ID, DigestSRI string
		} `json:"relatedResource"`
	}
	if err := json.Unmarshal(ana.cred, &cv); err != nil {
		t.Fatal(err)
	}
	listURL := "http://" + httpAddr + "/cert/status/1.json"
	if cv.Issuer.ID != did || cv.CredentialStatus.StatusListCredential != listURL || len(cv.RelatedResource) != 1 {
		t.Fatalf("credential: issuer %q status list %q related %v; want %s, %s and the PDF", cv.Issuer.ID, cv.CredentialStatus.StatusListCredential, cv.RelatedResource, did, listURL)
	}
	listPath := filepath.Join(www, "cert", "status", "1.json")
	list := waitPublished(t, ctx, all, listPath)

	tampered := bytes.Replace(ana.cred, []byte("Ana Lima"), []byte("Ana Limb"), 1)
	res := runJSVerifier(t, ctx, did, didDoc, listURL, list, map[string][]byte{"ana.json": ana.cred, "tampered.json": tampered})
	if r := res["ana.json"]; !r.Verified || r.Revoked {
		t.Errorf("reference verifier on certd's credential: %+v, want verified and not revoked", r)
	}
	if r := res["tampered.json"]; r.Verified {
		t.Errorf("reference verifier accepted a credential with a byte changed: %+v", r)
	}
	w := runWallet(t, ctx, did, didDoc, listURL, list, map[string][]byte{"ana.json": ana.cred})
	if c := w["ana.json"]; !c["valid_signature"] || !c["revocation_status"] || !c["expiration"] {
		t.Errorf("wallet verifier on certd's credential: %v, want valid signature, not revoked, not expired", c)
	}

	page := "http://" + httpAddr + "/cert/" + ana.verify
	if r := runCmd(ctx, "verify", "--url", page); r.code != 0 || !strings.Contains(r.stdout, "VALID:") {
		t.Fatalf("verify --url %s: exit %d\n%s%s", page, r.code, r.stdout, r.stderr)
	}

	// Revoke needs the token, like every call.
	if _, err := cl.Revoke(ctx, &certdv1.RevokeRequest{JobIds: []string{ana.job}, Reason: "x"}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Revoke without the token: %v, want Unauthenticated", err)
	}
	const reason = "Issued in error: the grade was corrected"
	rr, err := cl.Revoke(actx, &certdv1.RevokeRequest{JobIds: []string{ana.job}, Reason: reason})
	if err != nil || len(rr.Revoked) != 1 || rr.Revoked[0].VerifyUuid != ana.verify || rr.Revoked[0].Already {
		t.Fatalf("Revoke: %v %v", rr, err)
	}
	list = waitPublished(t, ctx, all, listPath, ana.index)
	r := runCmd(ctx, "verify", "--url", page)
	if r.code == 0 || !strings.Contains(r.stdout, "REVOKED") {
		t.Errorf("verify --url of a revoked certificate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	valid, err := os.ReadFile(filepath.Join(www, "cert", ana.verify, "valid.html"))
	if err != nil || !strings.Contains(strings.ToLower(string(valid)), "revoked") || !strings.Contains(string(valid), "the grade was corrected") {
		t.Errorf("valid.html after Revoke does not say revoked with the reason (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(www, "cert", ana.verify, "credential.json")); err != nil {
		t.Errorf("Revoke deleted the credential: %v", err)
	}
	job, err := cl.GetJob(actx, &certdv1.GetJobRequest{Id: ana.job})
	if err != nil || job.Job.RevokedAt == nil || job.Job.RevokeReason != reason {
		t.Errorf("job record after Revoke: %v %v", job, err)
	}
	res = runJSVerifier(t, ctx, did, didDoc, listURL, list, map[string][]byte{"ana.json": ana.cred})
	if r := res["ana.json"]; !r.Revoked {
		t.Errorf("reference verifier does not see the revoked bit: %+v", r)
	}
	w = runWallet(t, ctx, did, didDoc, listURL, list, map[string][]byte{"ana.json": ana.cred})
	if c := w["ana.json"]; !c["valid_signature"] || c["revocation_status"] {
		t.Errorf("wallet verifier on the revoked credential: %v, want valid signature and revocation_status false", c)
	}
	again, err := cl.Revoke(actx, &certdv1.RevokeRequest{VerifyUuids: []string{ana.verify}, Reason: "another"})
	if err != nil || len(again.Revoked) != 1 || !again.Revoked[0].Already || again.Revoked[0].Reason != reason {
		t.Errorf("second Revoke: %v %v, want already with the first reason", again, err)
	}

	// Concurrent revocations (separate calls) never lose each other.
	var wg sync.WaitGroup
	for _, c := range certs[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := cl.Revoke(actx, &certdv1.RevokeRequest{VerifyUuids: []string{c.verify}, Reason: "batch withdrawn"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	idx := []int{ana.index}
	for _, c := range certs[1:] {
		idx = append(idx, c.index)
	}
	waitPublished(t, ctx, all, listPath, idx...)

	if code := all.stop(t); code != 0 {
		t.Errorf("certd all exited %d", code)
	}
}

// The issuer DID follows verify-url and did-method; retired keys parse
// with their dates, and their document keys are the did:web places.
func TestIssuerDIDAndRetiredKeys(t *testing.T) {
	key, _ := credential.GenerateKey()
	pub := key.Public().(ed25519.PublicKey)
	for _, c := range []struct{ method, verify, did, docKey string }{
		{"", "https://certs.example.org", "did:web:certs.example.org", ".well-known/did.json"},
		{"", "https://example.org/academy/certs", "did:web:example.org:academy:certs", "did.json"},
		{"", "http://127.0.0.1:8080", "did:web:127.0.0.1%3A8080", ".well-known/did.json"},
		{"", "http://certs.example.org", credential.DIDKey(pub), ""},
		{"key", "https://certs.example.org", credential.DIDKey(pub), ""},
	} {
		did, kind, err := issuerDID(c.method, c.verify, pub)
		if err != nil || did != c.did {
			t.Errorf("%s %s: %s %v, want %s", c.method, c.verify, did, err, c.did)
			continue
		}
		if kind == "web" && didDocumentKey(did) != c.docKey {
			t.Errorf("%s: document key %s, want %s", did, didDocumentKey(did), c.docKey)
		}
	}
	if _, _, err := issuerDID("web", "http://certs.example.org", pub); err == nil {
		t.Error("did:web from a plain http URL beyond loopback was accepted")
	}
	dir := t.TempDir()
	old := filepath.Join(dir, "old.pem")
	if err := credential.WriteKeyFile(old, key); err != nil {
		t.Fatal(err)
	}
	keys, err := retiredKeys(" key-1=" + old + "@2027-06-30 ")
	if err != nil || len(keys) != 1 || keys[0].Fragment != "key-1" || !keys[0].Public.Equal(pub) ||
		!keys[0].ListedUntil.Equal(time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("retiredKeys: %+v %v", keys, err)
	}
	for _, bad := range []string{"key-1=" + old, "key-1@2027-01-01", "key-1=" + old + "@June", "key-1=/nonexistent.pem@2027-01-01"} {
		if _, err := retiredKeys(bad); err == nil {
			t.Errorf("retiredKeys(%q) accepted", bad)
		}
	}
}

// Key rotation: with the new key as key-2 and the old one retired until a
// date, certd all publishes both in its DID document.
func TestRotationListsBothKeys(t *testing.T) {
	clearCertdEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	oldKey := credentialKeygen(t, ctx, filepath.Join(dir, "old"))
	newKey := credentialKeygen(t, ctx, filepath.Join(dir, "new"))
	until := time.Now().AddDate(0, 1, 0).Format("2006-01-02")
	all := runBackground(t, "all", "--data-dir", dir, "--http-addr", freeAddr(t), "--grpc-addr", freeAddr(t),
		"--credential-key", newKey, "--credential-key-id", "key-2", "--credential-keys-retired", "key-1="+oldKey+"@"+until)
	if err := all.errOut.waitFor(ctx, "certd is running", 1); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "www", ".well-known", "did.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc credential.DIDDocument
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.AssertionMethod) != 2 || !strings.HasSuffix(doc.AssertionMethod[0], "#key-2") || !strings.HasSuffix(doc.AssertionMethod[1], "#key-1") {
		t.Errorf("DID document lists %v, want key-2 then key-1", doc.AssertionMethod)
	}
	if code := all.stop(t); code != 0 {
		t.Errorf("certd all exited %d", code)
	}
}
