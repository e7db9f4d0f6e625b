package consumer_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certd-dev/certd/consumer"
	"github.com/certd-dev/certd/consumer/courses"
	"github.com/certd-dev/certd/internal/credential"
	"github.com/certd-dev/certd/internal/lms"
	"github.com/certd-dev/certd/internal/pipeline"
	"github.com/certd-dev/certd/internal/statuslist"
	"github.com/certd-dev/certd/internal/testenv"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// credFixture is a handler issuing credentials (did:key issuer) into a
// file store, with its status list in the embedded NATS server's bucket.
type credFixture struct {
	env    *testenv.Env
	h      *consumer.Handler
	cr     *consumer.Credentials
	suite  *credential.Suite
	signer credential.Signer
}

const credCertData = `
course-v1:edX+NoCred+1: {CREDENTIAL: false}
course-v1:edX+NoVerify+1: {VERIFY: false}
course-v1:edX+Expires+1: {VALID_FOR: 365d, ORG_URL: "https://www.example.org/", COURSE_DESCRIPTION: "All about expiry.", CRITERIA: "Passed the final exam."}
`

func newCredFixture(t testing.TB) *credFixture {
	t.Helper()
	env := testenv.Start(t, pipeline.Options{})
	suite, err := credential.NewSuite()
	if err != nil {
		t.Fatal(err)
	}
	key, err := credential.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)
	f := &credFixture{env: env, suite: suite, signer: credential.Signer{Key: key, VerificationMethod: credential.DIDKeyVerificationMethod(pub)}}
	f.cr = &consumer.Credentials{
		Suite: suite, Signer: f.signer, IssuerDID: credential.DIDKey(pub), Status: statuslist.NewStore(env.P.Status),
		VerifyURL: testenv.VerifyURL,
	}
	cd := filepath.Join(t.TempDir(), "cert-data.yml")
	if err := os.WriteFile(cd, []byte(credCertData), 0o600); err != nil {
		t.Fatal(err)
	}
	catalog, err := courses.Load(cd, courses.Site{})
	if err != nil {
		t.Fatal(err)
	}
	f.h = consumer.NewHandler(consumer.HandlerConfig{
		Store: env.Store, Renderer: testenv.Renderer(t), Signer: env.Signer, Catalog: catalog,
		DownloadURL: testenv.DownloadURL, VerifyURL: testenv.VerifyURL, Logger: env.Log, Credentials: f.cr,
	})
	return f
}

func (f *credFixture) read(t *testing.T, key string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.env.StoreDir, filepath.FromSlash(key)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// check runs Suite.Check on a stored credential, against its stored PDF and
// the status list signed from the bucket's current bits.
func (f *credFixture) check(t *testing.T, ctx context.Context, job *certdv1.Job) credential.CheckResult {
	t.Helper()
	return f.checkBytes(t, ctx, f.read(t, "cert/"+job.VerifyUuid+"/credential.json"), f.read(t, "downloads/"+job.DownloadUuid+"/Certificate.pdf"))
}

func (f *credFixture) checkBytes(t *testing.T, ctx context.Context, cred, pdf []byte) credential.CheckResult {
	t.Helper()
	fetch := func(ctx context.Context, url string) ([]byte, error) {
		if url != f.cr.ListURL("1") {
			return nil, fmt.Errorf("unexpected fetch %s", url)
		}
		bits, _, err := f.cr.Status.Bits(ctx, "1")
		if err != nil {
			return nil, err
		}
		unsigned, err := statuslist.BuildCredential(statuslist.List{URL: url, IssuerDID: f.cr.IssuerDID, ValidFrom: time.Now(), TTL: time.Minute, Bits: bits})
		if err != nil {
			return nil, err
		}
		return f.suite.Sign(unsigned, f.signer, time.Now())
	}
	res, err := f.suite.Check(ctx, cred, pdf, fetch, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (f *credFixture) handle(t *testing.T, ctx context.Context, job *certdv1.Job) {
	t.Helper()
	res, err := f.h.Handle(ctx, job)
	if err != nil || !res.Ok {
		t.Fatalf("job %s: %v %q", job.Id, err, res.GetErrorReason())
	}
}

// A create stores a credential that checks out against the stored PDF; a
// redelivery keeps its status index; a regen revokes the old certificate's
// credential and issues a new one at another index; a remove revokes that.
func TestCredentialLifecycle(t *testing.T) {
	f := newCredFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	create := lms.Job{Action: "create", Username: "ada", CourseID: testenv.Course, CourseName: "Demo", Name: "Ada Lovelace", Grade: "Pass"}
	first := jobFor(create.Body())
	f.handle(t, ctx, first)
	if r := f.check(t, ctx, first); r.Verdict != credential.Valid {
		t.Fatalf("fresh credential: %s (%s)", r.Verdict, r.Reason)
	}
	_, idx, err := credential.StatusOf(f.read(t, "cert/"+first.VerifyUuid+"/credential.json"))
	if err != nil {
		t.Fatal(err)
	}
	valid := string(f.read(t, "cert/"+first.VerifyUuid+"/valid.html"))
	if !strings.Contains(valid, "credential.json") {
		t.Errorf("valid.html does not link the credential")
	}

	f.handle(t, ctx, first) // redelivered
	if _, again, _ := credential.StatusOf(f.read(t, "cert/"+first.VerifyUuid+"/credential.json")); again != idx {
		t.Fatalf("redelivery moved the status index from %d to %d", idx, again)
	}

	regen := create
	regen.Action, regen.DeleteDownloadUUID, regen.DeleteVerifyUUID = "regen", first.DownloadUuid, first.VerifyUuid
	second := jobFor(regen.Body())
	// Keep the old credential to check it after the regen deletes it.
	oldCred := f.read(t, "cert/"+first.VerifyUuid+"/credential.json")
	f.handle(t, ctx, second)
	if _, err := os.Stat(filepath.Join(f.env.StoreDir, "cert", first.VerifyUuid, "credential.json")); !os.IsNotExist(err) {
		t.Errorf("regen left the old credential.json (%v)", err)
	}
	bits, _, err := f.cr.Status.Bits(ctx, "1")
	if err != nil {
		t.Fatal(err)
	}
	if set, _ := bits.Get(idx); !set {
		t.Errorf("regen did not revoke the old credential (bit %d)", idx)
	}
	_, newIdx, _ := credential.StatusOf(f.read(t, "cert/"+second.VerifyUuid+"/credential.json"))
	if newIdx == idx {
		t.Errorf("the new certificate reuses the old status index %d", idx)
	}
	if r := f.check(t, ctx, second); r.Verdict != credential.Valid {
		t.Errorf("regenerated credential: %s (%s)", r.Verdict, r.Reason)
	}
	if r := f.checkBytes(t, ctx, oldCred, nil); r.Verdict != credential.Revoked {
		t.Errorf("the replaced certificate's credential: %s (%s), want REVOKED", r.Verdict, r.Reason)
	}

	remove := lms.Job{Action: "remove", Username: "ada", CourseID: testenv.Course, DeleteDownloadUUID: second.DownloadUuid, DeleteVerifyUUID: second.VerifyUuid}
	f.handle(t, ctx, jobFor(remove.Body()))
	e, err := f.cr.Status.Entry(ctx, second.VerifyUuid)
	if err != nil || e.RevokedAt == nil || e.Reason != "removed" || len(e.Page) != 0 {
		t.Errorf("remove: entry %+v (%v), want revoked with reason removed and the page input forgotten", e, err)
	}
}

// Credentials follow the course: CREDENTIAL: false drops only the
// credential, VERIFY: false drops signature, pages and credential;
// VALID_FOR, ORG_URL, COURSE_DESCRIPTION and CRITERIA reach the credential.
func TestCredentialCourseSettings(t *testing.T) {
	f := newCredFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, c := range []struct {
		course    string
		sig, cred bool
	}{
		{"course-v1:edX+NoCred+1", true, false},
		{"course-v1:edX+NoVerify+1", false, false},
		{"course-v1:edX+Expires+1", true, true},
	} {
		job := jobFor(lms.Job{Action: "create", Username: "u", CourseID: c.course, CourseName: "C", Name: "Una User", Grade: "Pass"}.Body())
		f.handle(t, ctx, job)
		_, errSig := os.Stat(filepath.Join(f.env.StoreDir, "cert", job.VerifyUuid, "Certificate.pdf.sig"))
		_, errCred := os.Stat(filepath.Join(f.env.StoreDir, "cert", job.VerifyUuid, "credential.json"))
		if (errSig == nil) != c.sig || (errCred == nil) != c.cred {
			t.Errorf("%s: signature stored %v (want %v), credential stored %v (want %v)", c.course, errSig == nil, c.sig, errCred == nil, c.cred)
		}
		if !c.cred || errCred != nil {
			continue
		}
		cred := string(f.read(t, "cert/"+job.VerifyUuid+"/credential.json"))
		for _, want := range []string{`"validUntil"`, `"url": "https://www.example.org/"`, "All about expiry.", "Passed the final exam."} {
			if !strings.Contains(cred, want) {
				t.Errorf("%s: credential lacks %s", c.course, want)
			}
		}
		if r := f.check(t, ctx, job); r.Verdict != credential.Valid {
			t.Errorf("%s: %s (%s)", c.course, r.Verdict, r.Reason)
		}
	}
}

// With credentials off for the site, certificates come without a
// credential, but removing one issued before still revokes it.
func TestCredentialsOffForTheSite(t *testing.T) {
	f := newCredFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	create := lms.Job{Action: "create", Username: "ada", CourseID: testenv.Course, CourseName: "Demo", Name: "Ada Lovelace", Grade: "Pass"}
	before := jobFor(create.Body())
	f.handle(t, ctx, before) // issued while on
	f.cr.Off = true
	after := jobFor(create.Body())
	f.handle(t, ctx, after)
	if _, err := os.Stat(filepath.Join(f.env.StoreDir, "cert", after.VerifyUuid, "credential.json")); !os.IsNotExist(err) {
		t.Errorf("credential stored with credentials off (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(f.env.StoreDir, "cert", after.VerifyUuid, "valid.html")); err != nil {
		t.Errorf("no valid.html with credentials off: %v", err)
	}
	remove := lms.Job{Action: "remove", Username: "ada", CourseID: testenv.Course, DeleteDownloadUUID: before.DownloadUuid, DeleteVerifyUUID: before.VerifyUuid}
	f.handle(t, ctx, jobFor(remove.Body()))
	if e, err := f.cr.Status.Entry(ctx, before.VerifyUuid); err != nil || e.RevokedAt == nil {
		t.Errorf("remove with credentials off did not revoke the earlier credential: %+v %v", e, err)
	}
}
