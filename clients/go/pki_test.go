// A throwaway PKI for the TLS tests, made at test time: a CA, a server certificate for 127.0.0.1
// and localhost, and a client certificate, all signed by the CA, in PEM files under t.TempDir().

package switchyard_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testPKI holds the PEM text of each part and the files the broker is started with.
type testPKI struct {
	caPEM                     []byte
	serverCertFile, serverKey string
	caFile                    string
	clientCertPEM, clientKey  []byte
}

// newTestPKI makes the CA and both certificates. ECDSA P-256 keys, which rustls and crypto/tls
// both take, are quick to make, so every test can have its own.
func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey := newKey(t)
	caTemplate := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "switchyard test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("make the CA: %v", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatalf("parse the CA: %v", err)
	}
	leaf := func(serial int64, name string, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
		key := newKey(t)
		template := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: name},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		if usage == x509.ExtKeyUsageServerAuth {
			template.DNSNames = []string{"localhost"}
			template.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		}
		der, err := x509.CreateCertificate(rand.Reader, template, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatalf("make the %s certificate: %v", name, err)
		}
		return pemBlock("CERTIFICATE", der), keyPEMOf(t, key)
	}
	pki := &testPKI{caPEM: pemBlock("CERTIFICATE", caDER)}
	serverCert, serverKey := leaf(2, "switchyard test server", x509.ExtKeyUsageServerAuth)
	pki.clientCertPEM, pki.clientKey = leaf(3, "switchyard test client", x509.ExtKeyUsageClientAuth)
	pki.caFile = writeFile(t, dir, "ca.pem", pki.caPEM)
	pki.serverCertFile = writeFile(t, dir, "server.pem", serverCert)
	pki.serverKey = writeFile(t, dir, "server.key", serverKey)
	return pki
}

// serverFlags start the broker with TLS, and with mutual TLS when clientCA is true.
func (p *testPKI) serverFlags(clientCA bool) []string {
	flags := []string{"--tls-cert", p.serverCertFile, "--tls-key", p.serverKey}
	if clientCA {
		flags = append(flags, "--tls-client-ca", p.caFile)
	}
	return flags
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("make a key: %v", err)
	}
	return key
}

func keyPEMOf(t *testing.T, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("encode a key: %v", err)
	}
	return pemBlock("PRIVATE KEY", der)
}

func pemBlock(kind string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return path
}
