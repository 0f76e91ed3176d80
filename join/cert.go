package join

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// certLifetime is long: the certificate is trusted by its key (the PIN),
// not by its dates, and a cluster should not stop admitting hosts on a
// day nobody remembers.
const certLifetime = 100 * 365 * 24 * time.Hour

// NewCertificate makes the cluster's join certificate: a self-signed
// ECDSA P-256 key pair, both PEM-encoded.
func NewCertificate() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("join: certificate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("join: certificate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "vxnet join"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("join: certificate: %w", err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("join: certificate key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}

// Pin is the token's PIN for a certificate: the SHA-256 of its public key
// (SubjectPublicKeyInfo), base32.
func Pin(cert *x509.Certificate) string {
	h := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return strings.ToLower(b32.EncodeToString(h[:]))
}

// LoadCertificate reads the join certificate and its key (PEM) and
// returns them with their PIN.
func LoadCertificate(certPEM, keyPEM []byte) (tls.Certificate, string, error) {
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("join certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("join certificate: %w", err)
	}
	c.Leaf = leaf
	return c, Pin(leaf), nil
}

// clientTLS trusts exactly the certificate whose key is pin.
func clientTLS(pin string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// The chain is not the trust: the key is (checked below).
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("join: the agent showed no certificate")
			}
			if got := Pin(cs.PeerCertificates[0]); got != pin {
				return fmt.Errorf("join: the agent's certificate is not the one the token names (PIN %s, want %s): a token of another cluster, or not a vxnet agent", got, pin)
			}
			return nil
		},
	}
}

// ServerTLS is the join service's TLS configuration.
func ServerTLS(cert tls.Certificate) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}}
}
