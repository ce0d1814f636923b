"""Messages of OperationOutcomes in English and Russian.

A client that sends `Accept-Language: ru` gets Russian diagnostics; anything else
gets English. Keys are stable identifiers; `{name}` placeholders are filled from the
issue's parameters.
"""

from __future__ import annotations

LANGUAGES = ("en", "ru")

MESSAGES: dict[str, tuple[str, str]] = {
    # request / transport
    "json-parse": ("The body is not valid JSON", "Тело запроса не является корректным JSON"),
    "body-not-object": ("The body must be a JSON object", "Тело запроса должно быть JSON-объектом"),
    "body-required": ("This interaction needs a resource in the body", "Для этого взаимодействия нужен ресурс в теле запроса"),
    "body-too-large": (
        "The body is larger than the allowed {limit} bytes",
        "Тело запроса больше допустимых {limit} байт",
    ),
    "unsupported-media-type": (
        "Content-Type '{value}' is not supported; use application/fhir+json",
        "Content-Type '{value}' не поддерживается; используйте application/fhir+json",
    ),
    "patch-media-type": (
        "PATCH needs Content-Type application/json-patch+json, not '{value}'",
        "Для PATCH нужен Content-Type application/json-patch+json, а не '{value}'",
    ),
    "not-acceptable": (
        "The server returns only application/fhir+json; '{value}' cannot be served",
        "Сервер отдаёт только application/fhir+json; '{value}' недоступен",
    ),
    "fhir-version": (
        "Only FHIR version 4.0 is served; '{value}' was asked for",
        "Сервер работает только с FHIR версии 4.0; запрошена '{value}'",
    ),
    "method-not-allowed": (
        "{method} is not allowed on {path}",
        "Метод {method} не разрешён для {path}",
    ),
    "unknown-path": ("No FHIR interaction is defined at {path}", "По адресу {path} нет взаимодействия FHIR"),
    "unknown-type": (
        "Resource type '{type}' is not supported by this server",
        "Тип ресурса '{type}' не поддерживается этим сервером",
    ),
    "internal": (
        "Internal server error; correlation id {cid}",
        "Внутренняя ошибка сервера; идентификатор обращения {cid}",
    ),
    "bad-param": ("Invalid value of parameter {name}: '{value}'", "Недопустимое значение параметра {name}: '{value}'"),
    "unknown-param": (
        "Unknown or unsupported search parameter(s): {name}",
        "Неизвестные или неподдерживаемые параметры поиска: {name}",
    ),
    "bad-modifier": ("Modifier '{modifier}' is not supported for {name}", "Модификатор '{modifier}' не поддерживается для {name}"),
    "bad-sort": ("Cannot sort by '{name}'", "Сортировка по '{name}' невозможна"),
    "chain-depth": ("Chain '{name}' is deeper than the two levels supported", "Цепочка '{name}' глубже поддерживаемых двух уровней"),
    "contained-search": ("Searching contained resources is not supported", "Поиск по вложенным ресурсам не поддерживается"),
    "system-search-type": (
        "A search across all types needs _type (for example ?_type=Patient,Observation)",
        "Для поиска по всем типам нужен параметр _type (например ?_type=Patient,Observation)",
    ),
    "search-form": (
        "POST _search needs Content-Type application/x-www-form-urlencoded, not '{value}'",
        "Для POST _search нужен Content-Type application/x-www-form-urlencoded, а не '{value}'",
    ),
    "scope-missing": (
        "The access token's scopes do not allow '{perm}' on {type}",
        "Области доступа токена не разрешают '{perm}' для {type}",
    ),
    "write-forbidden": ("You may not change {type} resources here", "Вам не разрешено изменять ресурсы {type} здесь"),
    "patient-edit-limited": (
        "A patient may change only their contact details, not: {fields}",
        "Пациент может изменять только свои контактные данные, но не: {fields}",
    ),
    "break-glass-practitioner": (
        "Only a signed-in practitioner may declare an emergency access",
        "Объявить экстренный доступ может только вошедший в систему врач",
    ),
    "break-glass-reason": ("An emergency access needs a reason", "Для экстренного доступа нужно указать причину"),
    # Patient/$bind-oms-policy
    "enp-required": ("Give the OMS policy number as parameter 'enp'", "Укажите номер полиса ОМС в параметре 'enp'"),
    "enp-type": ("Parameter 'enp' must be a valueString", "Параметр 'enp' должен быть valueString"),
    "enp-format": (
        "The OMS policy number (ENP) must be exactly 16 digits",
        "Номер полиса ОМС (ЕНП) должен состоять ровно из 16 цифр",
    ),
    "enp-check-digit": (
        "The OMS policy number is mistyped: its check digit (the last digit) does not match",
        "Номер полиса ОМС введён с ошибкой: не сходится контрольная (последняя) цифра",
    ),
    "enp-unknown": ("The insurers' registry has no policy with this number", "В реестре страховых медицинских организаций нет полиса с таким номером"),
    "enp-name-mismatch": (
        "The name on this policy does not match the patient's name",
        "ФИО владельца полиса не совпадает с ФИО пациента",
    ),
    "enp-birthdate-mismatch": (
        "The birth date on this policy does not match the patient's birth date",
        "Дата рождения владельца полиса не совпадает с датой рождения пациента",
    ),
    "enp-expired": ("This policy expired on {date}", "Срок действия полиса истёк {date}"),
    "enp-not-started": ("This policy is in force only from {date}", "Полис действует только с {date}"),
    "enp-not-esia": (
        "Gosuslugi (ESIA) reports a different OMS policy number for this account",
        "В Госуслугах (ЕСИА) для этой учётной записи указан другой номер полиса ОМС",
    ),
    "oms-registry-unavailable": (
        "The insurers' registry cannot be reached now; try again later",
        "Реестр страховых медицинских организаций сейчас недоступен; повторите попытку позже",
    ),
    "admin-only": ("Only administrators may call {op}", "Вызывать {op} могут только администраторы"),
    "audit-immutable": (
        "The audit trail is written by the server only; AuditEvent cannot be created, changed or deleted",
        "Журнал аудита ведёт только сервер; AuditEvent нельзя создать, изменить или удалить",
    ),
    "bad-header": ("Invalid {name} header: '{value}'", "Недопустимый заголовок {name}: '{value}'"),
    # resources and versions
    "not-found": ("Resource {ref} is not known", "Ресурс {ref} не найден"),
    "version-not-found": ("Version {version} of {ref} is not known", "Версия {version} ресурса {ref} не найдена"),
    "gone": ("Resource {ref} was deleted", "Ресурс {ref} удалён"),
    "version-gone": ("Version {version} of {ref} is a deletion", "Версия {version} ресурса {ref} — это удаление"),
    "deleted": ("Resource {ref} deleted", "Ресурс {ref} удалён"),
    "already-deleted": ("Resource {ref} was already deleted", "Ресурс {ref} уже был удалён"),
    "version-conflict": (
        "Version conflict on {ref}: expected version {expected}, current is {current}",
        "Конфликт версий {ref}: ожидалась версия {expected}, текущая {current}",
    ),
    "concurrent-write": (
        "{ref} was changed by another request at the same time; retry",
        "{ref} одновременно изменён другим запросом; повторите запрос",
    ),
    "id-mismatch": (
        "The resource id '{body}' does not match the id '{url}' in the URL",
        "Идентификатор ресурса '{body}' не совпадает с идентификатором '{url}' в URL",
    ),
    "id-missing": ("An update needs the resource id in the body", "Для обновления в теле ресурса нужен его идентификатор"),
    "id-invalid": ("'{value}' is not a valid resource id", "'{value}' не является допустимым идентификатором ресурса"),
    "type-mismatch": (
        "The body is a {body}, but the URL names {url}",
        "В теле передан ресурс {body}, а в URL указан {url}",
    ),
    "resource-type-missing": ("The resource has no resourceType", "У ресурса нет элемента resourceType"),
    "created": ("Resource {ref} created", "Ресурс {ref} создан"),
    "updated": ("Resource {ref} updated", "Ресурс {ref} обновлён"),
    "unchanged": ("Resource {ref} is unchanged; no new version", "Ресурс {ref} не изменился; новая версия не создана"),
    "patch-failed": ("The JSON Patch cannot be applied: {reason}", "JSON Patch не может быть применён: {reason}"),
    "patch-not-array": ("A JSON Patch body is an array of operations", "Тело JSON Patch — это массив операций"),
    "patch-changes-id": ("A patch may not change the resource id or type", "Патч не может менять идентификатор или тип ресурса"),
    # conditional interactions
    "conditional-multiple": (
        "More than one resource matches {criteria}; the criteria must be more selective",
        "Условию {criteria} соответствует более одного ресурса; уточните условие",
    ),
    "conditional-none-deleted": (
        "No resource matches {criteria}; nothing was deleted",
        "Ни один ресурс не соответствует условию {criteria}; ничего не удалено",
    ),
    "conditional-empty": ("Conditional criteria must not be empty", "Условие не может быть пустым"),
    "conditional-param": (
        "Parameter '{name}' is not allowed in conditional criteria (allowed: {supported})",
        "Параметр '{name}' недопустим в условиях (допустимы: {supported})",
    ),
    "conditional-exists": ("Resource {ref} matches {criteria}; nothing was created", "Условию {criteria} соответствует ресурс {ref}; новый не создан"),
    "conditional-id-mismatch": (
        "The resource id '{body}' differs from '{match}' found by the criteria",
        "Идентификатор ресурса '{body}' отличается от найденного по условию '{match}'",
    ),
    # validation
    "validation-failed": ("The resource is not valid", "Ресурс не прошёл проверку"),
    "unknown-element": ("Unknown element '{name}'", "Неизвестный элемент '{name}'"),
    "required": ("Element is required", "Обязательный элемент отсутствует"),
    "null-value": ("null is not allowed here", "Значение null здесь не допускается"),
    "empty-array": ("Arrays must not be empty", "Массивы не могут быть пустыми"),
    "empty-object": ("Objects must have content", "Объект не может быть пустым"),
    "expected-array": ("Expected an array (the element repeats)", "Ожидался массив (элемент повторяется)"),
    "expected-single": ("Expected a single value, not an array", "Ожидалось одно значение, а не массив"),
    "expected-object": ("Expected a JSON object of type {type}", "Ожидался JSON-объект типа {type}"),
    "expected-kind": (
        "Expected a JSON {kind} for {type}, got {got}",
        "Для типа {type} ожидалось JSON-значение вида {kind}, получено {got}",
    ),
    "bad-format": ("'{value}' is not a valid {type}", "'{value}' не является допустимым значением типа {type}"),
    "out-of-range": ("{value} is out of range for {type}", "{value} вне допустимого диапазона для типа {type}"),
    "bad-code": (
        "'{value}' is not in the required value set (allowed: {allowed})",
        "'{value}' не входит в обязательный набор значений (допустимы: {allowed})",
    ),
    "extension-array": (
        "The '_{name}' array must be as long as the '{name}' array",
        "Массив '_{name}' должен быть той же длины, что и массив '{name}'",
    ),
    "primitive-ext-only": (
        "'_{name}' belongs to a primitive element; '{name}' is not primitive",
        "'_{name}' допустим только для примитивного элемента; '{name}' не примитивный",
    ),
    "resource-type-mismatch": ("resourceType must be '{expected}'", "resourceType должен быть '{expected}'"),
    "choice-multiple": ("Only one of {names} may be present", "Допустим только один из элементов {names}"),
    "model": ("{text}", "{text}"),
    "bad-reference": ("'{value}' is not a valid reference", "'{value}' не является допустимой ссылкой"),
    "reference-target": (
        "A reference to {target} is not allowed here (allowed: {allowed})",
        "Ссылка на {target} здесь не допускается (допустимы: {allowed})",
    ),
    "contained-missing": (
        "Reference '{value}' names no contained resource",
        "Ссылка '{value}' не указывает на вложенный (contained) ресурс",
    ),
    "conditional-reference-outside": (
        "Conditional reference '{value}' is only resolved inside transaction and batch bundles",
        "Условная ссылка '{value}' разрешается только внутри пакетов transaction и batch",
    ),
    "valid": ("Validation passed: no errors", "Проверка пройдена: ошибок нет"),
    "validate-mode": ("Unknown $validate mode '{value}'", "Неизвестный режим $validate: '{value}'"),
    "validate-profile": (
        "Profile '{value}' is not known to this server",
        "Профиль '{value}' неизвестен этому серверу",
    ),
    "delete-ok": ("Resource {ref} can be deleted", "Ресурс {ref} может быть удалён"),
    # bundles
    "bundle-type": (
        "POST to the base accepts a Bundle of type batch or transaction, not '{value}'",
        "POST на базовый адрес принимает Bundle типа batch или transaction, а не '{value}'",
    ),
    "bundle-too-many": ("The bundle has {count} entries; at most {limit} are accepted", "В пакете {count} записей; допустимо не более {limit}"),
    "entry-request": ("Every entry needs a request with method and url", "Каждой записи нужен request с method и url"),
    "entry-method": ("Unsupported request.method '{value}'", "Неподдерживаемый request.method '{value}'"),
    "entry-resource": ("A {method} entry needs a resource", "Записи {method} нужен ресурс"),
    "entry-url": ("Cannot process request.url '{value}'", "Невозможно обработать request.url '{value}'"),
    "entry-failed": ("Entry {index} failed: {text}", "Запись {index} не выполнена: {text}"),
    "duplicate-fullurl": ("fullUrl '{value}' appears more than once", "fullUrl '{value}' встречается более одного раза"),
    "duplicate-target": (
        "More than one entry changes {ref} in this transaction",
        "В этой транзакции несколько записей изменяют {ref}",
    ),
    "unresolved-reference": (
        "Reference '{value}' matches no resource",
        "Ссылка '{value}' не соответствует ни одному ресурсу",
    ),
    "ambiguous-reference": (
        "Reference '{value}' matches more than one resource",
        "Ссылка '{value}' соответствует более чем одному ресурсу",
    ),
    "transaction-ok": ("Transaction completed", "Транзакция выполнена"),
    # fhir_server.auth.authenticate: the bearer token of a FHIR request
    "auth-required": (
        "Authorization is required: send an access token as 'Authorization: Bearer <token>'",
        "Требуется авторизация: передайте токен доступа в заголовке 'Authorization: Bearer <токен>'",
    ),
    "auth-invalid": (
        "The access token is invalid, expired or revoked",
        "Токен доступа недействителен, просрочен или отозван",
    ),
    # profiles_ru: Russian identifiers (identifiers.problem) and the RU profiles (profiles_ru/validator.py)
    "identifier-format": (
        "{label_en} {value}: must be {digits} digits (spaces and hyphens allowed)",
        "{label_ru} {value}: должно быть {digits} цифр (пробелы и дефисы допускаются)",
    ),
    "identifier-passport-format": (
        "{label_en} {value}: must be a 4-digit series and a 6-digit number, as 45 08 123456 or 4508 123456",
        "{label_ru} {value}: нужны серия из 4 цифр и номер из 6 цифр, например 45 08 123456 или 4508 123456",
    ),
    "identifier-oid-format": (
        "{label_en} {value}: must be an OID 1.2.643.5.1.13.13.12.2.<region>.<organisation>",
        "{label_ru} {value}: должен быть OID вида 1.2.643.5.1.13.13.12.2.<регион>.<организация>",
    ),
    "identifier-check-digit": (
        "{label_en} {value}: check number {found} does not match {expected}",
        "{label_ru} {value}: контрольное число {found} не совпадает с {expected}",
    ),
    "profile-min": (
        "{path}: profile {profile} needs at least {min}, found {count}",
        "{path}: профиль {profile} требует не менее {min}, найдено {count}",
    ),
    "profile-max": (
        "{path}: profile {profile} allows at most {max}, found {count}",
        "{path}: профиль {profile} допускает не более {max}, найдено {count}",
    ),
    "profile-slice-min": (
        "{path}: profile {profile} needs at least {min} of '{slice}', found {count}",
        "{path}: профиль {profile} требует не менее {min} элементов «{slice}», найдено {count}",
    ),
    "profile-slice-max": (
        "{path}: profile {profile} allows at most {max} of '{slice}', found {count}",
        "{path}: профиль {profile} допускает не более {max} элементов «{slice}», найдено {count}",
    ),
    "profile-slice-closed": (
        "{path}: profile {profile} allows only its slices here ({slices})",
        "{path}: профиль {profile} допускает здесь только свои срезы ({slices})",
    ),
    "profile-fixed": (
        "{path}: profile {profile} fixes the value {value}",
        "{path}: профиль {profile} требует значение {value}",
    ),
    "profile-pattern": (
        "{path}: profile {profile} needs a value matching {value}",
        "{path}: профиль {profile} требует значение, соответствующее {value}",
    ),
    "profile-type": (
        "{path}: profile {profile} allows {allowed} here, not {found}",
        "{path}: профиль {profile} допускает здесь {allowed}, а не {found}",
    ),
    "profile-binding": (
        "{path}: {code} is not in the value set {valueset} (required binding of profile {profile})",
        "{path}: {code} не входит в набор значений {valueset} (обязательная привязка профиля {profile})",
    ),
    "profile-binding-no-code": (
        "{path}: a code from the value set {valueset} is required (profile {profile})",
        "{path}: нужен код из набора значений {valueset} (профиль {profile})",
    ),
    "profile-binding-unknown": (
        "{path}: the value set {valueset} is unknown to this server, so {code} was not checked",
        "{path}: набор значений {valueset} неизвестен серверу, поэтому {code} не проверен",
    ),
    "profile-cyrillic": (
        "{path}: '{value}' must be written in Cyrillic letters (words joined by a hyphen, space or apostrophe)",
        "{path}: «{value}» нужно написать кириллицей (слова разделяются дефисом, пробелом или апострофом)",
    ),
    "profile-org-identifier": (
        "{path}: profile {profile} needs an OGRN, an FRMO OID or an insurer code (NSI 1.2.643.5.1.13.13.99.2.183) identifier",
        "{path}: профиль {profile} требует идентификатор ОГРН, OID в ФРМО или код страховой организации (НСИ 1.2.643.5.1.13.13.99.2.183)",
    ),
    "profile-unknown": (
        "Profile {profile} is not known to this server; the resource was not checked against it",
        "Профиль {profile} неизвестен серверу; проверка на соответствие ему не выполнялась",
    ),
    # terminology/ (NSI terminology service) and the search modifiers :in :not-in :below :above
    "tx-code-unknown": ("Unknown code '{code}' in the code system {url}", "Код '{code}' отсутствует в справочнике {url}"),
    "tx-code-unchecked": (
        "Code '{code}' is not in the packaged content ({content}) of {url}, so it cannot be checked here",
        "Кода '{code}' нет в упакованном содержимом ({content}) справочника {url}; проверить его здесь нельзя",
    ),
    "tx-code-unchecked-vs": (
        "Code '{code}' is not in the packaged part of the value set {url}, so it cannot be checked here",
        "Кода '{code}' нет в упакованной части набора значений {url}; проверить его здесь нельзя",
    ),
    "tx-code-not-in-vs": ("The code '{code}' is not in the value set {url}", "Код '{code}' не входит в набор значений {url}"),
    "tx-display-wrong": (
        "The display '{display}' is not a display of the code '{code}' in {url} (expected '{expected}')",
        "Наименование '{display}' не соответствует коду '{code}' в {url} (ожидается '{expected}')",
    ),
    "tx-unknown-valueset": ("The value set {url} is not known to this server", "Набор значений {url} неизвестен серверу"),
    "tx-unknown-codesystem": ("The code system {url} is not known to this server", "Справочник {url} неизвестен серверу"),
    "tx-unknown-conceptmap": ("The concept map {url} is not known to this server", "Таблица соответствия {url} неизвестна серверу"),
    "tx-no-conceptmap": (
        "No concept map of this server maps {system} to {target}",
        "На сервере нет таблицы соответствия из {system} в {target}",
    ),
    "tx-code-not-found": ("Code '{code}' was not found in {url}", "Код '{code}' не найден в справочнике {url}"),
    "tx-filter-unsupported": (
        "The value set filter '{property} {op}' is not supported by this server",
        "Фильтр набора значений '{property} {op}' сервером не поддерживается",
    ),
    "tx-valueset-cycle": ("The value set {url} includes itself", "Набор значений {url} включает сам себя"),
    "tx-valueset-no-content": (
        "The value set {url} has neither a compose nor an expansion",
        "У набора значений {url} нет ни compose, ни expansion",
    ),
    "tx-param-missing": ("The operation needs the parameter '{name}'", "Для операции нужен параметр '{name}'"),
    "tx-param-one-of": ("The operation needs one of the parameters {names}", "Для операции нужен один из параметров {names}"),
    "tx-param-invalid": ("Parameter '{name}': '{value}' is not valid", "Параметр '{name}': значение '{value}' недопустимо"),
    "tx-param-repeated": ("Parameter '{name}' may appear only once", "Параметр '{name}' может быть указан только один раз"),
    "tx-parameters-body": (
        "The body of this operation must be a Parameters resource",
        "Тело запроса этой операции должно быть ресурсом Parameters",
    ),
    "tx-search-unknown-valueset": (
        "{name}: the value set {url} is not known to this server",
        "{name}: набор значений {url} неизвестен серверу",
    ),
    "tx-search-hierarchy": (
        "{name}: '{value}' must be system|code of a hierarchical code system known to this server",
        "{name}: '{value}' должно быть system|code иерархического справочника, известного серверу",
    ),
}


def render(key: str, lang: str, params: dict) -> str:
    en, ru = MESSAGES[key]
    template = ru if lang == "ru" else en
    try:
        return template.format(**params)
    except (KeyError, IndexError):
        return template
