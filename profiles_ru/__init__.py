"""The Russian national layer: identifier systems and their check digits (identifiers), the
RU profiles as StructureDefinitions (definitions/, profiles) and their validator (validator).

    from profiles_ru import identifiers
    identifiers.check("snils", "112-233-445 95")    -> None (valid) or an error key
    identifiers.SYSTEMS["enp"].system               -> the FHIR Identifier.system
    from profiles_ru import profiles
    profiles.issues(resource, reader, enforce)      -> the RU profile issues of a resource
"""

# Canonical base of this server's own conformance resources (StructureDefinition, ValueSet,
# ConceptMap, local CodeSystem): {CANONICAL}/StructureDefinition/ru-patient, ...
CANONICAL = "https://fhir-server-ru.github.io/fhir"
