"""Trust and key stores read as Spring Boot reads them, into one SSL context."""

import ssl

import pytest

from kafkaboot.errors import ConfigurationError
from kafkaboot.security.context import build_ssl_context
from kafkaboot.security.stores import read_key_store, read_trust_store
from kafkaboot.testing.certificates import KEY_PASSWORD, STORE_PASSWORD


def _trust(location, password=STORE_PASSWORD, type_=None, certificates=None):
    return read_trust_store(
        location=location,
        password=password,
        type_=type_,
        certificates=certificates,
        setting="ssl.truststore",
    )


def _key(location, password=STORE_PASSWORD, type_=None, key_password=None):
    return read_key_store(
        location=location,
        password=password,
        type_=type_,
        key_password=key_password,
        certificate_chain=None,
        key=None,
        setting="ssl.keystore",
    )


@pytest.mark.parametrize("store", ["ca_pem", "truststore_p12", "truststore_jks"])
def test_each_trust_store_type_gives_the_ca(security_files, store):
    path = getattr(security_files, store)
    pem = _trust(f"file:{path}")
    assert pem == security_files.ca_pem.read_text()
    context = build_ssl_context(trusted=pem, key=None)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert (("commonName", "kafkaboot test CA"),) in context.get_ca_certs()[0]["subject"]


@pytest.mark.parametrize("store", ["keystore_p12", "keystore_jks"])
def test_each_key_store_type_gives_the_client_key(security_files, store):
    # A JKS key entry has its own password (ssl.key-password); PKCS12 uses the store's.
    material = _key(str(getattr(security_files, store)), key_password=KEY_PASSWORD)
    assert "BEGIN CERTIFICATE" in material.certificate_chain
    assert "PRIVATE KEY" not in repr(material)
    build_ssl_context(trusted=security_files.ca_pem.read_text(), key=material)


def test_a_pem_key_store_with_an_encrypted_key_needs_the_key_password(security_files):
    chain = security_files.client_cert_pem.read_text()
    key = security_files.client_key_encrypted_pem.read_text()
    material = read_key_store(
        location=None,
        password=None,
        type_=None,
        key_password=KEY_PASSWORD,
        certificate_chain=chain,
        key=key,
        setting="ssl.keystore",
    )
    build_ssl_context(trusted=None, key=material)
    with pytest.raises(ConfigurationError, match=r"wrong key password"):
        read_key_store(
            location=None,
            password=None,
            type_=None,
            key_password="wrong",
            certificate_chain=chain,
            key=key,
            setting="ssl.keystore",
        )


@pytest.mark.parametrize("store", ["truststore_p12", "truststore_jks"])
def test_a_wrong_store_password_names_the_file(security_files, store):
    path = getattr(security_files, store)
    with pytest.raises(ConfigurationError) as caught:
        _trust(str(path), password="not-the-password")
    message = str(caught.value)
    assert str(path) in message
    assert "wrong password" in message
    assert "not-the-password" not in message


def test_a_wrong_key_password_in_a_jks_store_is_named(security_files):
    with pytest.raises(ConfigurationError, match=r"wrong key password.*key-password"):
        _key(str(security_files.keystore_jks), key_password="wrong")


def test_a_missing_store_names_the_setting_and_file(tmp_path):
    with pytest.raises(
        ConfigurationError,
        match=r"ssl.truststore.location \(kafka.ssl.trust-store-location.*\): file .*nope.jks",
    ):
        _trust(f"file:{tmp_path}/nope.jks")


def test_a_classpath_location_is_refused_with_the_fix():
    with pytest.raises(ConfigurationError, match=r"classpath resource.*give a file path"):
        _trust("classpath:truststore.jks")


def test_the_type_comes_from_the_name_unless_given(security_files, tmp_path):
    renamed = tmp_path / "trust.store"  # No telling suffix: Java's default, JKS.
    renamed.write_bytes(security_files.truststore_jks.read_bytes())
    assert _trust(str(renamed)) == security_files.ca_pem.read_text()
    p12 = tmp_path / "trust.bin"
    p12.write_bytes(security_files.truststore_p12.read_bytes())
    assert _trust(str(p12), type_="PKCS12") == security_files.ca_pem.read_text()
    with pytest.raises(ConfigurationError, match=r"store type 'BKS' is not supported"):
        _trust(str(p12), type_="BKS")


def test_inline_pem_certificates_are_trusted(security_files):
    text = security_files.ca_pem.read_text()
    assert _trust(None, certificates=text) == text


def test_tls_versions_follow_the_java_client():
    assert build_ssl_context(trusted=None, key=None, protocol="TLSv1.2").maximum_version is (
        ssl.TLSVersion.TLSv1_2
    )
    context = build_ssl_context(trusted=None, key=None, enabled_protocols=["TLSv1.3"])
    assert context.minimum_version is ssl.TLSVersion.TLSv1_3
    with pytest.raises(ConfigurationError, match=r"SSLv3"):
        build_ssl_context(trusted=None, key=None, protocol="SSLv3")
