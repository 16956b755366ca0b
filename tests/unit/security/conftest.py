import pytest

from kafkaboot.testing.certificates import SecurityFiles, write_security_files


@pytest.fixture(scope="session")
def security_files(tmp_path_factory: pytest.TempPathFactory) -> SecurityFiles:
    """A CA, client certificate and stores as PEM, PKCS12 and JKS (written once)."""
    return write_security_files(tmp_path_factory.mktemp("security"))
