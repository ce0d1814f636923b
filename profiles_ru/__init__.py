"""The Russian national layer: identifier systems and their check digits (identifiers).

    from profiles_ru import identifiers
    identifiers.check("snils", "112-233-445 95")    -> None (valid) or an error key
    identifiers.SYSTEMS["enp"].system               -> the FHIR Identifier.system
"""
