"""sasl.jaas.config lines read as the Java client reads them."""

import pytest

from kafkaboot.security.jaas import PLAIN, JaasError, jaas_line, parse_jaas


def test_a_plain_line_gives_module_flag_and_options():
    parsed = parse_jaas(
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        'username="alice" password="p\\"w;d";'
    )
    assert parsed.login_module == PLAIN
    assert parsed.control_flag == "required"
    assert dict(parsed.options) == {"username": "alice", "password": 'p"w;d'}
    assert 'p\\"w' not in repr(parsed)


def test_unquoted_values_are_read():
    parsed = parse_jaas(
        "com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true serviceName=kafka;"
    )
    assert parsed.family == "GSSAPI"
    assert parsed.options["useKeyTab"] == "true"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (f'{PLAIN} required username="a" password="b"', "must end with ';'"),
        (f'{PLAIN} required username="a" password="b;', "cannot be read"),
    ],
)
def test_a_line_java_would_refuse_is_refused(line, problem):
    with pytest.raises(JaasError, match=problem):
        parse_jaas(line)


def test_an_unsupported_module_is_named():
    with pytest.raises(JaasError, match=r"com.example.MyLoginModule.*supported"):
        parse_jaas("com.example.MyLoginModule required;")


def test_two_modules_are_refused():
    with pytest.raises(JaasError, match=r"more than one login module"):
        parse_jaas(f'{PLAIN} required username="a" password="b"; {PLAIN} required;')


def test_a_bad_flag_is_refused():
    with pytest.raises(JaasError, match=r"control flag"):
        parse_jaas(f'{PLAIN} mandatory username="a";')


def test_a_line_written_reads_back():
    options = {"username": "bob", "password": 'with "quotes" and \\ back'}
    assert dict(parse_jaas(jaas_line(PLAIN, "required", options)).options) == options
