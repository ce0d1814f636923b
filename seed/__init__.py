"""Synthetic Russian data, loaded through the server's own transaction path (POST /fhir).

    demo.py        the fixed demo card and accounts of `serve --demo`, plus FHIR_DEMO_PATIENTS generated patients
    generator.py   a deterministic, streamed population (`fhir-server seed --patients N --seed S`)
    load.py        posts its Bundles in process or to a running server
    vocabulary.py  every code and name it uses, in one table (listed in vocabulary.md)
"""
