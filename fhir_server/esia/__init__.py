"""Sign-in through Gosuslugi (ESIA), and an ESIA emulator for development and tests.

    pki        Streebog-256, GOST R 34.10-2012 (256) and RSA signers, certificates, detached PKCS#7
    protocol   endpoints of the v2 and legacy APIs, the signed strings, timestamps, ESIA's JWTs
    client     EsiaClient: authorization URL, code exchange, token checks, person data (timeouts, retries)
    provider   EsiaProvider: the identity provider behind /auth/authorize (fhir_server.auth.providers)
    linking    the ESIA person -> our Account and Patient / Practitioner (by SNILS), trust record
    persons    the emulator's test persons, the SNILS check digits
    emulator   the emulator's Flask application (`fhir-server esia-emulator`)
    stand      keys, certificates and settings of a development stand (emulator + server)
"""
