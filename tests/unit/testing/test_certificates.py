"""The generated certificates and stores: readable with their documented passwords, chained
to the CA, and the broker's certificate valid for 127.0.0.1 and localhost."""

import ipaddress
import shutil
import subprocess

import jks
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from kafkaboot.testing.certificates import (
    KEY_PASSWORD,
    STORE_PASSWORD,
    SecurityFiles,
    write_security_files,
)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_security_files(tmp_path_factory.mktemp("security"))


def _ca(files):
    return x509.load_pem_x509_certificate(files.ca_pem.read_bytes())


def test_client_pem_files_chain_to_the_ca_and_hold_the_matching_key(files):
    client, ca = x509.load_pem_x509_certificates(files.client_cert_pem.read_bytes())
    client.verify_directly_issued_by(_ca(files))
    assert ca == _ca(files)
    key = serialization.load_pem_private_key(files.client_key_pem.read_bytes(), None)
    encrypted = serialization.load_pem_private_key(
        files.client_key_encrypted_pem.read_bytes(), KEY_PASSWORD.encode()
    )
    assert key.public_key() == client.public_key() == encrypted.public_key()
    with pytest.raises(TypeError):  # Encrypted: no password, no key.
        serialization.load_pem_private_key(files.client_key_encrypted_pem.read_bytes(), None)


def test_broker_certificate_names_loopback_and_localhost(files):
    key, broker, _chain = pkcs12.load_key_and_certificates(
        files.broker_keystore_p12.read_bytes(), STORE_PASSWORD.encode()
    )
    broker.verify_directly_issued_by(_ca(files))
    names = broker.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert key.public_key() == broker.public_key()


def test_pkcs12_stores_open_with_the_store_password(files):
    key, client, chain = pkcs12.load_key_and_certificates(
        files.keystore_p12.read_bytes(), STORE_PASSWORD.encode()
    )
    client.verify_directly_issued_by(_ca(files))
    assert key.public_key() == client.public_key()
    assert chain == [_ca(files)]
    trust = pkcs12.load_pkcs12(files.truststore_p12.read_bytes(), STORE_PASSWORD.encode())
    assert trust.key is None
    assert [c.certificate for c in trust.additional_certs] == [_ca(files)]
    with pytest.raises(ValueError, match="password"):
        pkcs12.load_key_and_certificates(files.keystore_p12.read_bytes(), b"wrong")


def test_jks_stores_open_with_the_store_password_and_the_key_password(files):
    trust = jks.KeyStore.load(str(files.truststore_jks), STORE_PASSWORD)
    assert trust.certs["ca"].cert == _ca(files).public_bytes(serialization.Encoding.DER)
    keys = jks.KeyStore.load(str(files.keystore_jks), STORE_PASSWORD, try_decrypt_keys=False)
    entry = keys.private_keys["client"]
    with pytest.raises(jks.DecryptionFailureException):
        entry.decrypt(STORE_PASSWORD)
    entry.decrypt(KEY_PASSWORD)
    client = x509.load_der_x509_certificate(entry.cert_chain[0][1])
    client.verify_directly_issued_by(_ca(files))
    with pytest.raises(jks.KeystoreSignatureException):
        jks.KeyStore.load(str(files.truststore_jks), "wrong")


@pytest.mark.skipif(shutil.which("keytool") is None, reason="no JDK keytool here")
@pytest.mark.parametrize(
    ("store", "kind", "entry"),
    [
        ("truststore_p12", "PKCS12", "trustedCertEntry"),
        ("keystore_p12", "PKCS12", "PrivateKeyEntry"),
        ("truststore_jks", "JKS", "trustedCertEntry"),
        ("keystore_jks", "JKS", "PrivateKeyEntry"),
    ],
)
def test_java_reads_each_store(files, store, kind, entry):
    listed = subprocess.run(
        [
            "keytool",
            "-list",
            "-keystore",
            str(getattr(files, store)),
            "-storetype",
            kind,
            "-storepass",
            STORE_PASSWORD,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert entry in listed.stdout


def test_a_second_call_reuses_the_files(files):
    before = files.ca_pem.read_bytes()
    assert write_security_files(files.directory) == files
    assert files.ca_pem.read_bytes() == before


def test_private_files_are_readable_by_the_owner_only(files):
    for path in (files.client_key_pem, files.keystore_jks, files.oauth_signing_key):
        assert path.stat().st_mode & 0o077 == 0, path


def test_jwks_holds_the_public_half_of_the_signing_key(files):
    import json

    import jwt

    jwks = json.loads(files.jwks_json.read_text())
    public = jwt.PyJWK(jwks["keys"][0]).key
    signing = serialization.load_pem_private_key(files.oauth_signing_key.read_bytes(), None)
    assert public.public_numbers() == signing.public_key().public_numbers()


def test_security_files_names_every_path_under_its_directory(tmp_path):
    files = SecurityFiles(tmp_path)
    assert files.truststore_jks == tmp_path / "truststore.jks"
    assert files.keystore_p12 == tmp_path / "keystore.p12"
