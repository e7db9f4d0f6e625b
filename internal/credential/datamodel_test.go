package credential

import (
	"encoding/json"
	"slices"
	"testing"
	"time"
)

// The 1EdTech JSON schema (ob_v3p0_achievementcredential_schema.json) is
// published only at purl.imsglobal.org, not in the specification
// repository, so it is not vendored. This test checks what the OB 3.0 data
// model (section B.1) makes required for the objects certd writes.
func TestOpenBadgeRequiredMembers(t *testing.T) {
	s, _ := NewSuite()
	iss := newTestIssuer(t)
	signed, err := s.IssueOpenBadge(testBadge(iss.did), iss.signer, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	json.Unmarshal(signed, &c)
	obj := func(m map[string]any, k string) map[string]any {
		t.Helper()
		v, ok := m[k].(map[string]any)
		if !ok {
			t.Fatalf("%s is not an object: %v", k, m[k])
		}
		return v
	}
	types := func(m map[string]any) []string {
		var out []string
		switch v := m["type"].(type) {
		case string:
			out = []string{v}
		case []any:
			for _, e := range v {
				out = append(out, e.(string))
			}
		}
		return out
	}
	need := func(what string, m map[string]any, keys ...string) {
		t.Helper()
		for _, k := range keys {
			if v, ok := m[k]; !ok || v == "" {
				t.Errorf("%s lacks required %q", what, k)
			}
		}
	}
	need("AchievementCredential", c, "@context", "id", "type", "issuer", "validFrom", "name", "credentialSubject", "proof")
	if ty := types(c); !slices.Contains(ty, "VerifiableCredential") || !slices.Contains(ty, "OpenBadgeCredential") {
		t.Errorf("credential type %v", ty)
	}
	issuer := obj(c, "issuer")
	need("Profile", issuer, "id", "type", "name")
	if !slices.Contains(types(issuer), "Profile") {
		t.Errorf("issuer type %v", types(issuer))
	}
	sub := obj(c, "credentialSubject")
	need("AchievementSubject", sub, "type", "achievement", "identifier")
	if !slices.Contains(types(sub), "AchievementSubject") {
		t.Errorf("subject type %v", types(sub))
	}
	for _, e := range sub["identifier"].([]any) {
		id := e.(map[string]any)
		need("IdentityObject", id, "type", "hashed", "identityHash", "identityType")
	}
	ach := obj(sub, "achievement")
	need("Achievement", ach, "id", "type", "name", "description", "criteria")
	if !slices.Contains(types(ach), "Achievement") {
		t.Errorf("achievement type %v", types(ach))
	}
	need("Criteria", obj(ach, "criteria"), "narrative")
	for _, e := range sub["result"].([]any) {
		need("Result", e.(map[string]any), "type", "value")
	}
	for _, k := range []string{"validFrom", "validUntil"} {
		if _, err := time.Parse(time.RFC3339, c[k].(string)); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	need("BitstringStatusListEntry", obj(c, "credentialStatus"), "type", "statusPurpose", "statusListIndex", "statusListCredential")
	need("proof", obj(c, "proof"), "type", "cryptosuite", "created", "verificationMethod", "proofPurpose", "proofValue")
}
