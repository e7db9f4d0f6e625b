package credential_test

import (
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/certd-dev/certd/internal/credential"
)

// A certificate's credential, as certd writes it to
// cert/<verify_uuid>/credential.json. The bytes are fixed: Ed25519 is
// deterministic, so this also locks the canonicalization.
func ExampleSuite_IssueOpenBadge() {
	suite, err := credential.NewSuite()
	if err != nil {
		panic(err)
	}
	seed := make([]byte, ed25519.SeedSize) // a real key comes from LoadKeyFile
	key := ed25519.NewKeyFromSeed(seed)
	did, _ := credential.DIDWeb("https://certs.example.org/")
	signer := credential.Signer{Key: key, VerificationMethod: did + "#key-1"}

	vc, err := suite.IssueOpenBadge(credential.Badge{
		ID:          "https://certs.example.org/cert/5f0c6a52-8f0e-4c1b-9d1e-2b7a3c4d5e6f/credential.json",
		Issuer:      credential.Issuer{DID: did, Name: "Example University Online", URL: "https://www.example.org/"},
		ValidFrom:   time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC),
		Name:        "Certificate: Data Structures and Algorithms",
		LearnerName: "Ada Lovelace",
		Achievement: credential.Achievement{
			ID:          "https://certs.example.org/course/course-v1:ExampleX+DSA101+2026_T3",
			Name:        "Data Structures and Algorithms",
			Description: "Lists, trees, graphs and the algorithms that use them.",
			Criteria:    "Completed the course with a passing grade.",
		},
		Grade:        "92%",
		PDFURL:       "https://certs.example.org/downloads/5f0c6a52/certificate.pdf",
		PDFDigestSRI: credential.DigestSRI([]byte("%PDF-1.7 example")),
		Status:       &credential.StatusEntry{ListURL: "https://certs.example.org/cert/status/1.json", Index: 48213},
	}, signer, time.Date(2026, 12, 6, 10, 0, 5, 0, time.UTC))
	if err != nil {
		panic(err)
	}
	fmt.Println(string(vc))
	// Output:
	// {
	//   "@context": [
	//     "https://www.w3.org/ns/credentials/v2",
	//     "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
	//   ],
	//   "id": "https://certs.example.org/cert/5f0c6a52-8f0e-4c1b-9d1e-2b7a3c4d5e6f/credential.json",
	//   "type": [
	//     "VerifiableCredential",
	//     "OpenBadgeCredential"
	//   ],
	//   "issuer": {
	//     "id": "did:web:certs.example.org",
	//     "type": [
	//       "Profile"
	//     ],
	//     "name": "Example University Online",
	//     "url": "https://www.example.org/"
	//   },
	//   "validFrom": "2026-12-06T10:00:00Z",
	//   "name": "Certificate: Data Structures and Algorithms",
	//   "credentialSubject": {
	//     "type": [
	//       "AchievementSubject"
	//     ],
	//     "name": "Ada Lovelace",
	//     "identifier": [
	//       {
	//         "type": "IdentityObject",
	//         "identityHash": "Ada Lovelace",
	//         "identityType": "name",
	//         "hashed": false
	//       }
	//     ],
	//     "achievement": {
	//       "id": "https://certs.example.org/course/course-v1:ExampleX+DSA101+2026_T3",
	//       "type": [
	//         "Achievement"
	//       ],
	//       "name": "Data Structures and Algorithms",
	//       "description": "Lists, trees, graphs and the algorithms that use them.",
	//       "criteria": {
	//         "narrative": "Completed the course with a passing grade."
	//       }
	//     },
	//     "result": [
	//       {
	//         "type": [
	//           "Result"
	//         ],
	//         "value": "92%"
	//       }
	//     ]
	//   },
	//   "relatedResource": [
	//     {
	//       "id": "https://certs.example.org/downloads/5f0c6a52/certificate.pdf",
	//       "mediaType": "application/pdf",
	//       "digestSRI": "sha384-/F5mob9X7/F6UBi5/NPVPDBH75wBQtYZ7MgkwJcpe2Jwl0B0cLMynQrs/q/vLVWu"
	//     }
	//   ],
	//   "credentialStatus": {
	//     "id": "https://certs.example.org/cert/status/1.json#48213",
	//     "type": "BitstringStatusListEntry",
	//     "statusPurpose": "revocation",
	//     "statusListIndex": "48213",
	//     "statusListCredential": "https://certs.example.org/cert/status/1.json"
	//   },
	//   "proof": {
	//     "type": "DataIntegrityProof",
	//     "cryptosuite": "eddsa-rdfc-2022",
	//     "created": "2026-12-06T10:00:05Z",
	//     "verificationMethod": "did:web:certs.example.org#key-1",
	//     "proofPurpose": "assertionMethod",
	//     "proofValue": "z47CVWbndEmdtVJDUKbo12YMPbJjyk8W3PVptAgHN11pMDuVh48Hidrm2WGmQPSmxedDm36kt7bsELqp2ptBmk5j4"
	//   }
	// }
}
