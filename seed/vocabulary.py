"""The clinical and demographic vocabulary of the generated population, in one place.

Codes: МКБ-10 (NSI 1.2.643.5.1.13.13.11.1005), LOINC, UCUM, ATC and the NSI directories of
specialties (11.1066), positions (11.1002) and FSLI lab tests (11.1080). NSI rows name the
concept by its Russian name; the code comes from the packaged terminology (`terminology.concepts`,
matched by name; FSLI by its LOINC mapping in the ConceptMap fsli-to-loinc), whose codes are
only those seen in public SEMD/MIS sources (terminology/data/SOURCES.md): what the server does
not package is written as text, never as an invented code. seed/vocabulary.md lists every row
with the code it resolves to today (regenerate with `python -m seed.vocabulary`; a test checks
it is current, so a change of the packaged terminology shows there).
"""

from __future__ import annotations

from dataclasses import dataclass, field

ICD10 = "urn:oid:1.2.643.5.1.13.13.11.1005"
NSI_SEX = "urn:oid:1.2.643.5.1.13.13.11.1040"
SPECIALTIES = "urn:oid:1.2.643.5.1.13.13.11.1066"
POSITIONS = "urn:oid:1.2.643.5.1.13.13.11.1002"
FSLI = "urn:oid:1.2.643.5.1.13.13.11.1080"
MED_SERVICES = "urn:oid:1.2.643.5.1.13.13.11.1070"  # nomenclature of medical services (приказ 804н)
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ATC = "http://www.whocc.no/atc"

# -- people ----------------------------------------------------------------------------------
MALE_NAMES = (
    "Александр", "Сергей", "Дмитрий", "Андрей", "Алексей", "Иван", "Максим", "Владимир", "Михаил", "Николай",
    "Евгений", "Игорь", "Юрий", "Олег", "Павел", "Виктор", "Василий", "Артём", "Роман", "Денис", "Антон",
    "Константин", "Илья", "Никита", "Кирилл", "Пётр", "Григорий", "Анатолий", "Валерий", "Геннадий", "Борис",
    "Станислав", "Вадим", "Леонид", "Виталий", "Аркадий", "Лев", "Фёдор", "Егор", "Тимофей", "Матвей",
    "Ярослав", "Глеб", "Степан", "Яков", "Георгий", "Семён", "Даниил",
)
FEMALE_NAMES = (
    "Анна", "Мария", "Елена", "Ольга", "Наталья", "Татьяна", "Ирина", "Светлана", "Екатерина", "Юлия",
    "Анастасия", "Марина", "Галина", "Людмила", "Валентина", "Нина", "Любовь", "Вера", "Надежда", "Дарья",
    "Александра", "Ксения", "Полина", "Виктория", "Алина", "Софья", "Елизавета", "Евгения", "Оксана",
    "Лариса", "Тамара", "Зоя", "Раиса", "Алёна", "Кристина", "Вероника",
)
# Male surnames ending -ов/-ев/-ёв/-ин/-ын take -а, -ский/-цкий take -ская/-цкая; -енко/-ук do not change.
SURNAMES = (
    "Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов", "Новиков", "Фёдоров",
    "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров", "Павлов", "Козлов", "Степанов", "Николаев",
    "Орлов", "Андреев", "Макаров", "Никитин", "Захаров", "Зайцев", "Соловьёв", "Борисов", "Яковлев", "Григорьев",
    "Романов", "Воробьёв", "Сергеев", "Кузьмин", "Фролов", "Александров", "Дмитриев", "Королёв", "Гусев",
    "Киселёв", "Ильин", "Максимов", "Поляков", "Сорокин", "Виноградов", "Ковалёв", "Белов", "Медведев",
    "Антонов", "Тарасов", "Жуков", "Баранов", "Филиппов", "Комаров", "Давыдов", "Беляев", "Герасимов",
    "Богданов", "Осипов", "Сидоров", "Матвеев", "Титов", "Марков", "Миронов", "Крылов", "Куликов", "Карпов",
    "Власов", "Мельников", "Денисов", "Гаврилов", "Тихонов", "Казаков", "Афанасьев", "Данилов", "Тимофеев",
    "Фомин", "Чернов", "Калинин", "Щербаков", "Назаров", "Быков", "Маслов", "Лазарев", "Голубев", "Кудрявцев",
    "Покровский", "Вишневский", "Соболевский", "Троицкий", "Шевченко", "Бондаренко", "Ткаченко", "Ковальчук",
)

# Patronymics (отчества) that no suffix rule gives: father's name -> (male, female).
PATRONYMIC_EXCEPTIONS = {
    "Илья": ("Ильич", "Ильинична"), "Никита": ("Никитич", "Никитична"), "Фома": ("Фомич", "Фоминична"),
    "Кузьма": ("Кузьмич", "Кузьминична"), "Лука": ("Лукич", "Лукинична"), "Лев": ("Львович", "Львовна"),
    "Павел": ("Павлович", "Павловна"), "Пётр": ("Петрович", "Петровна"), "Михаил": ("Михайлович", "Михайловна"),
    "Яков": ("Яковлевич", "Яковлевна"),
}

# -- places: (region code, region, OKATO prefix of passport series, health authority suffix or None,
#    organisation prefix, cities as (city, first postal code, postal codes), streets) ------------
@dataclass(frozen=True)
class Region:
    code: int  # subject of the Russian Federation (the FRMO OID arc)
    name: str
    okato: str  # first two digits of passport series issued there
    org_prefix: str  # legal form + regional prefix of a state health organisation
    org_suffix: str  # e.g. "ДЗМ" (Департамент здравоохранения города Москвы)
    cities: tuple[tuple[str, int, int], ...]  # (city, first postal code, how many)
    streets: tuple[str, ...]


_STREETS = ("ул. Ленина", "ул. Гагарина", "ул. Мира", "ул. Советская", "ул. Садовая", "пр-т Победы", "ул. Пушкина",
            "ул. Молодёжная", "ул. Школьная", "ул. Лесная", "ул. Набережная", "ул. Кирова", "ул. Чапаева", "ул. Московская")
REGIONS = (
    Region(77, "г. Москва", "45", "ГБУЗ", "ДЗМ", (("Москва", 101000, 29000),),
           ("ул. Тверская", "Ленинский пр-т", "ул. Профсоюзная", "ул. Новый Арбат", "ул. Большая Якиманка", "Варшавское ш.",
            "ул. Народного Ополчения", "ул. Вавилова", "Мичуринский пр-т", "ул. Маросейка")),
    Region(78, "г. Санкт-Петербург", "40", "СПб ГБУЗ", "", (("Санкт-Петербург", 190000, 9000),),
           ("Невский пр-т", "ул. Садовая", "Московский пр-т", "ул. Марата", "Лиговский пр-т", "ул. Савушкина",
            "пр-т Просвещения", "ул. Ленсовета")),
    Region(50, "Московская область", "46", "ГБУЗ МО", "", (("Подольск", 142100, 19), ("Химки", 141400, 10), ("Балашиха", 143900, 90)), _STREETS),
    Region(16, "Республика Татарстан", "92", "ГАУЗ", "", (("Казань", 420000, 140), ("Набережные Челны", 423800, 60)), _STREETS),
    Region(66, "Свердловская область", "65", "ГАУЗ СО", "", (("Екатеринбург", 620000, 150), ("Нижний Тагил", 622000, 50)), _STREETS),
    Region(54, "Новосибирская область", "50", "ГБУЗ НСО", "", (("Новосибирск", 630000, 130),), _STREETS),
    Region(52, "Нижегородская область", "22", "ГБУЗ НО", "", (("Нижний Новгород", 603000, 160),), _STREETS),
    Region(61, "Ростовская область", "60", "МБУЗ", "", (("Ростов-на-Дону", 344000, 120), ("Таганрог", 347900, 40)), _STREETS),
    Region(63, "Самарская область", "36", "ГБУЗ СО", "", (("Самара", 443000, 130), ("Тольятти", 445000, 60)), _STREETS),
    Region(23, "Краснодарский край", "03", "ГБУЗ", "", (("Краснодар", 350000, 90), ("Сочи", 354000, 70)), _STREETS),
    Region(2, "Республика Башкортостан", "80", "ГБУЗ РБ", "", (("Уфа", 450000, 110),), _STREETS),
    Region(74, "Челябинская область", "75", "ГАУЗ", "", (("Челябинск", 454000, 140), ("Магнитогорск", 455000, 50)), _STREETS),
)
# Population weights of REGIONS (roughly their share of Russia's population, in per mille).
REGION_WEIGHTS = (90, 38, 58, 27, 28, 19, 22, 28, 21, 40, 28, 23)

ORG_KINDS = (  # (name pattern, kind) of a medical organisation
    ("Городская поликлиника № {n}", "outpatient"),
    ("Городская клиническая больница № {n}", "hospital"),
    ("Городская поликлиника № {n}", "outpatient"),
    ("Консультативно-диагностический центр № {n}", "outpatient"),
)

# Insurers (СМО) when the packaged terminology has none (NSI 1.2.643.5.1.13.13.99.2.183): fictional names.
FALLBACK_INSURERS = ("АО «Страховая медицинская компания «Доверие-Мед»»", "ООО «Медицинская страховая организация «Забота»»",
                     "АО «СМК «Северо-Запад Полис»»")


# -- staff: (specialty name in NSI 11.1066, position name in NSI 11.1002; codes from the packaged terminology) --
@dataclass(frozen=True)
class Role:
    key: str
    specialty: str
    position: str
    weight: int = 1  # how many of this role an organisation has, relatively


ROLES = (
    Role("therapist", "Терапия", "врач-терапевт участковый", 6),
    Role("therapist-hospital", "Терапия", "врач-терапевт", 2),
    Role("gp", "Общая врачебная практика (семейная медицина)", "врач общей практики (семейный врач)", 2),
    Role("cardiologist", "Кардиология", "врач-кардиолог", 2),
    Role("endocrinologist", "Эндокринология", "врач-эндокринолог", 1),
    Role("neurologist", "Неврология", "врач-невролог", 1),
    Role("surgeon", "Хирургия", "врач-хирург", 1),
    Role("gynecologist", "Акушерство и гинекология", "врач-акушер-гинеколог", 1),
    Role("pediatrician", "Педиатрия", "врач-педиатр участковый", 2),
    Role("pulmonologist", "Пульмонология", "врач-пульмонолог", 1),
    Role("gastroenterologist", "Гастроэнтерология", "врач-гастроэнтеролог", 1),
    Role("nephrologist", "Нефрология", "врач-нефролог", 1),
    Role("psychiatrist", "Психиатрия", "врач-психиатр", 1),
    Role("lab", "Клиническая лабораторная диагностика", "врач клинической лабораторной диагностики", 1),
    Role("radiologist", "Рентгенология", "врач-рентгенолог", 1),
    Role("sonographer", "Ультразвуковая диагностика", "врач ультразвуковой диагностики", 1),
)


# -- lab tests ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class LabTest:
    key: str
    loinc: str
    loinc_display: str
    name: str  # Russian name as written on a lab form
    ucum: str
    unit: str  # Russian unit text
    low: float | None
    high: float | None
    mean: float  # healthy mean
    sd: float
    decimals: int
    fsli: str | None = None  # verified FSLI code; otherwise taken from the ConceptMap fsli-to-loinc
    female: tuple[float | None, float | None, float] | None = None  # (low, high, mean) for women


LAB_TESTS = {
    t.key: t
    for t in (
        LabTest("hb", "718-7", "Hemoglobin [Mass/volume] in Blood", "Гемоглобин общий", "g/L", "г/л", 130, 170, 148, 9, 0, "1017128",
                (120, 150, 134)),
        LabTest("rbc", "789-8", "Erythrocytes [#/volume] in Blood by Automated count", "Эритроциты", "10*12/L", "×10¹²/л", 4.0, 5.5, 4.8,
                0.35, 2, None, (3.7, 4.9, 4.3)),
        LabTest("wbc", "6690-2", "Leukocytes [#/volume] in Blood by Automated count", "Лейкоциты", "10*9/L", "×10⁹/л", 4.0, 9.0, 6.4, 1.3, 1),
        LabTest("plt", "777-3", "Platelets [#/volume] in Blood by Automated count", "Тромбоциты", "10*9/L", "×10⁹/л", 150, 400, 255, 50, 0),
        LabTest("hct", "4544-3", "Hematocrit [Volume Fraction] of Blood by Automated count", "Гематокрит", "%", "%", 40, 48, 44, 2.2, 1,
                None, (36, 42, 39)),
        LabTest("esr", "4537-7", "Erythrocyte sedimentation rate by Westergren method", "СОЭ", "mm/h", "мм/ч", 2, 15, 7, 3, 0, None,
                (2, 20, 10)),
        LabTest("glucose", "14749-6", "Glucose [Moles/volume] in Serum or Plasma", "Глюкоза", "mmol/L", "ммоль/л", 3.9, 6.1, 5.0, 0.45, 1),
        LabTest("hba1c", "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "Гликированный гемоглобин (HbA1c)", "%", "%", 4.0, 6.0,
                5.3, 0.3, 1),
        LabTest("creatinine", "14682-9", "Creatinine [Moles/volume] in Serum or Plasma", "Креатинин", "umol/L", "мкмоль/л", 62, 115, 88,
                11, 0, None, (53, 97, 71)),
        LabTest("egfr", "62238-1", "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or Blood by "
                "Creatinine-based formula (CKD-EPI)", "СКФ (CKD-EPI)", "mL/min/{1.73_m2}", "мл/мин/1,73 м²", 90, None, 95, 12, 0),
        LabTest("urea", "22664-7", "Urea [Moles/volume] in Serum or Plasma", "Мочевина", "mmol/L", "ммоль/л", 2.5, 8.3, 5.2, 1.1, 1),
        LabTest("alt", "1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "АЛТ", "U/L", "Ед/л", 0, 41, 22,
                8, 0, None, (0, 33, 18)),
        LabTest("ast", "1920-8", "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "АСТ", "U/L", "Ед/л", 0, 40,
                23, 7, 0, None, (0, 32, 20)),
        LabTest("bilirubin", "14631-6", "Bilirubin.total [Moles/volume] in Serum or Plasma", "Билирубин общий", "umol/L", "мкмоль/л", 3.4,
                20.5, 11, 4, 1),
        LabTest("potassium", "2823-3", "Potassium [Moles/volume] in Serum or Plasma", "Калий", "mmol/L", "ммоль/л", 3.5, 5.1, 4.3, 0.3, 1),
        LabTest("sodium", "2951-2", "Sodium [Moles/volume] in Serum or Plasma", "Натрий", "mmol/L", "ммоль/л", 136, 145, 140, 2, 0),
        LabTest("urate", "14933-6", "Urate [Moles/volume] in Serum or Plasma", "Мочевая кислота", "umol/L", "мкмоль/л", 202, 416, 320, 50,
                0, None, (143, 339, 250)),
        LabTest("crp", "1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", "С-реактивный белок", "mg/L", "мг/л", 0, 5, 1.8,
                1.0, 1),
        LabTest("chol", "14647-2", "Cholesterol [Moles/volume] in Serum or Plasma", "Холестерин общий", "mmol/L", "ммоль/л", None, 5.2,
                4.8, 0.6, 2),
        LabTest("ldl", "22748-8", "Cholesterol in LDL [Moles/volume] in Serum or Plasma", "Холестерин ЛПНП", "mmol/L", "ммоль/л", None,
                3.0, 2.7, 0.5, 2),
        LabTest("hdl", "14646-4", "Cholesterol in HDL [Moles/volume] in Serum or Plasma", "Холестерин ЛПВП", "mmol/L", "ммоль/л", 1.0,
                None, 1.3, 0.25, 2, None, (1.2, None, 1.5)),
        LabTest("tg", "14927-8", "Triglyceride [Moles/volume] in Serum or Plasma", "Триглицериды", "mmol/L", "ммоль/л", None, 1.7, 1.2,
                0.35, 2),
        LabTest("tsh", "3016-3", "Thyrotropin [Units/volume] in Serum or Plasma", "Тиреотропный гормон (ТТГ)", "m[IU]/L", "мМЕ/л", 0.4,
                4.0, 1.8, 0.7, 2),
        LabTest("ft4", "14920-3", "Thyroxine (T4) free [Moles/volume] in Serum or Plasma", "Тироксин свободный (св. Т4)", "pmol/L", "пмоль/л",
                9, 19, 14, 2, 1),
        LabTest("ferritin", "2276-4", "Ferritin [Mass/volume] in Serum or Plasma", "Ферритин", "ng/mL", "нг/мл", 20, 250, 110, 45, 0, None,
                (10, 120, 55)),
        LabTest("iron", "14798-3", "Iron [Moles/volume] in Serum or Plasma", "Железо сывороточное", "umol/L", "мкмоль/л", 9, 30, 18, 4, 1),
        LabTest("inr", "6301-6", "INR in Platelet poor plasma by Coagulation assay", "МНО", "{INR}", "", 0.8, 1.2, 1.0, 0.08, 2),
        LabTest("malb", "14957-5", "Microalbumin [Mass/volume] in Urine", "Микроальбумин в моче", "mg/L", "мг/л", 0, 20, 8, 5, 0),
        LabTest("psa", "2857-1", "Prostate specific Ag [Mass/volume] in Serum or Plasma", "ПСА общий", "ng/mL", "нг/мл", 0, 4, 1.2, 0.7, 2),
        LabTest("usg", "5811-5", "Specific gravity of Urine by Test strip", "Относительная плотность мочи", "1", "", 1.010, 1.025, 1.018,
                0.004, 3),
        LabTest("uprot", "2888-6", "Protein [Mass/volume] in Urine", "Белок в моче", "g/L", "г/л", 0, 0.14, 0.04, 0.03, 2),
    )
}


@dataclass(frozen=True)
class Panel:
    key: str
    name: str
    loinc: str | None  # the panel's LOINC code; None: the report is coded by its single test
    loinc_display: str | None
    tests: tuple[str, ...]


PANELS = {
    p.key: p
    for p in (
        Panel("cbc", "Общий (клинический) анализ крови", "58410-2", "CBC panel - Blood by Automated count",
              ("hb", "rbc", "wbc", "plt", "hct", "esr")),
        Panel("bio", "Биохимический анализ крови", "24323-8", "Comprehensive metabolic 2000 panel - Serum or Plasma",
              ("glucose", "creatinine", "egfr", "urea", "alt", "ast", "bilirubin", "potassium", "sodium")),
        Panel("lipids", "Липидограмма", "57698-3", "Lipid panel with direct LDL - Serum or Plasma", ("chol", "ldl", "hdl", "tg")),
        Panel("urine", "Общий анализ мочи", "24356-8", "Urinalysis complete panel - Urine", ("usg", "uprot")),
        Panel("hba1c", "Гликированный гемоглобин", None, None, ("hba1c",)),
        Panel("thyroid", "Гормоны щитовидной железы", None, None, ("tsh", "ft4")),
        Panel("iron", "Обмен железа", None, None, ("ferritin", "iron")),
        Panel("inr", "Коагулограмма (МНО)", None, None, ("inr",)),
        Panel("malb", "Микроальбумин в моче", None, None, ("malb",)),
        Panel("psa", "Простатспецифический антиген", None, None, ("psa",)),
        Panel("crp", "С-реактивный белок", None, None, ("crp",)),
        Panel("urate", "Мочевая кислота", None, None, ("urate",)),
    )
}


# -- vital signs: (key, LOINC, LOINC display, Russian name, UCUM, Russian unit) --------------------
VITALS = {
    "bp": ("85354-9", "Blood pressure panel with all children optional", "Артериальное давление", None, None),
    "sys": ("8480-6", "Systolic blood pressure", "Систолическое артериальное давление", "mm[Hg]", "мм рт. ст."),
    "dia": ("8462-4", "Diastolic blood pressure", "Диастолическое артериальное давление", "mm[Hg]", "мм рт. ст."),
    "hr": ("8867-4", "Heart rate", "Частота сердечных сокращений", "/min", "уд/мин"),
    "weight": ("29463-7", "Body weight", "Масса тела", "kg", "кг"),
    "height": ("8302-2", "Body height", "Рост", "cm", "см"),
    "bmi": ("39156-5", "Body mass index (BMI) [Ratio]", "Индекс массы тела", "kg/m2", "кг/м²"),
    "temp": ("8310-5", "Body temperature", "Температура тела", "Cel", "°C"),
    "spo2": ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "Сатурация кислорода (SpO₂)", "%", "%"),
}


# -- imaging: (key, NSI 11.1070 service code, Russian name, LOINC category of the report, normal conclusions,
#    abnormal conclusions keyed by the МКБ-10 code that explains them) -----------------------------
@dataclass(frozen=True)
class Imaging:
    key: str
    service: str  # code in the nomenclature of medical services, NSI 1.2.643.5.1.13.13.11.1070
    name: str
    modality: str  # DICOM modality code (http://dicom.nema.org/resources/ontology/DCM)
    normal: tuple[str, ...]
    findings: dict = field(default_factory=dict)  # МКБ-10 code -> conclusion


IMAGING = {
    i.key: i
    for i in (
        Imaging("xr-chest", "A06.09.007", "Рентгенография лёгких", "DX",
                ("Лёгочные поля без очаговых и инфильтративных теней. Корни структурны. Синусы свободны. Сердце не расширено.",),
                {"J18.9": "Инфильтрация лёгочной ткани в нижней доле справа, соответствует пневмонии.",
                 "J44.9": "Лёгочный рисунок усилен, деформирован; признаки эмфиземы. Очаговых теней нет."}),
        Imaging("ct-chest", "A06.09.005", "Компьютерная томография органов грудной полости", "CT",
                ("Патологических изменений органов грудной полости не выявлено.",),
                {"J18.9": "Участки консолидации и «матового стекла» в S9-S10 правого лёгкого; картина пневмонии.",
                 "C50.9": "Очаговых образований в лёгких не выявлено; внутригрудные лимфоузлы не увеличены."}),
        Imaging("us-abdomen", "A04.16.001", "Ультразвуковое исследование органов брюшной полости (комплексное)", "US",
                ("Печень, желчный пузырь, поджелудочная железа, селезёнка без особенностей.",),
                {"E11.9": "Диффузные изменения печени по типу жирового гепатоза.",
                 "K29.7": "Эхографических изменений органов брюшной полости не выявлено."}),
        Imaging("us-kidney", "A04.28.001", "Ультразвуковое исследование почек и надпочечников", "US",
                ("Почки обычных размеров и формы, паренхима не истончена, чашечно-лоханочная система не расширена.",),
                {"N18.3": "Почки уменьшены в размерах, паренхима истончена, повышенной эхогенности.",
                 "N39.0": "Уплотнение стенок чашечно-лоханочной системы справа, конкрементов нет."}),
        Imaging("us-thyroid", "A04.22.001", "Ультразвуковое исследование щитовидной железы и паращитовидных желёз", "US",
                ("Щитовидная железа обычных размеров, структура однородная.",),
                {"E03.9": "Щитовидная железа уменьшена, структура диффузно неоднородная, эхогенность снижена."}),
        Imaging("echo", "A04.10.002", "Эхокардиография", "US",
                ("Полости сердца не расширены, сократимость миокарда сохранена, ФВ 62%.",),
                {"I11.9": "Гипертрофия миокарда левого желудочка, ФВ 58%, диастолическая дисфункция 1 типа.",
                 "I25.1": "Зоны гипокинезии нижней стенки левого желудочка, ФВ 50%.",
                 "I48": "Дилатация левого предсердия, ФВ 55%."}),
        Imaging("mri-brain", "A05.23.009", "Магнитно-резонансная томография головного мозга", "MR",
                ("Очаговых изменений вещества головного мозга не выявлено.",),
                {"I63.9": "Очаг ишемии в бассейне левой средней мозговой артерии.",
                 "I10": "Единичные очаги глиоза в белом веществе сосудистого генеза."}),
        Imaging("mammo", "A06.20.004", "Маммография", "MG",
                ("Патологических изменений молочных желёз не выявлено (BI-RADS 1).",),
                {"C50.9": "Образование левой молочной железы с неровными контурами, 18 мм (BI-RADS 5)."}),
    )
}


# -- drugs: (key, INN in Russian, ATC, dosage text) -----------------------------------------------------
DRUGS = {
    d[0]: d
    for d in (
        ("metformin", "Метформин 1000 мг, таблетки", "A10BA02", "По 1 таблетке 2 раза в день во время еды"),
        ("gliclazide", "Гликлазид 60 мг, таблетки с модифицированным высвобождением", "A10BB09", "По 1 таблетке утром во время завтрака"),
        ("enalapril", "Эналаприл 10 мг, таблетки", "C09AA02", "По 1 таблетке 2 раза в день"),
        ("amlodipine", "Амлодипин 5 мг, таблетки", "C08CA01", "По 1 таблетке 1 раз в день"),
        ("losartan", "Лозартан 50 мг, таблетки", "C09CA01", "По 1 таблетке утром"),
        ("indapamide", "Индапамид 2,5 мг, таблетки", "C03BA11", "По 1 таблетке утром"),
        ("bisoprolol", "Бисопролол 5 мг, таблетки", "C07AB07", "По 1 таблетке утром, контроль пульса"),
        ("atorvastatin", "Аторвастатин 20 мг, таблетки", "C10AA05", "По 1 таблетке вечером"),
        ("rosuvastatin", "Розувастатин 10 мг, таблетки", "C10AA07", "По 1 таблетке вечером"),
        ("aspirin", "Ацетилсалициловая кислота 100 мг, таблетки кишечнорастворимые", "B01AC06", "По 1 таблетке после ужина"),
        ("apixaban", "Апиксабан 5 мг, таблетки", "B01AF02", "По 1 таблетке 2 раза в день"),
        ("warfarin", "Варфарин 2,5 мг, таблетки", "B01AA03", "По 1 таблетке вечером под контролем МНО"),
        ("salbutamol", "Сальбутамол 100 мкг/доза, аэрозоль для ингаляций", "R03AC02", "1-2 ингаляции при приступе, не более 8 в сутки"),
        ("budesonide-formoterol", "Будесонид + формотерол 160/4,5 мкг/доза, порошок для ингаляций", "R03AK07", "По 1 ингаляции 2 раза в день"),
        ("tiotropium", "Тиотропия бромид 18 мкг, капсулы с порошком для ингаляций", "R03BB04", "1 ингаляция 1 раз в день"),
        ("levothyroxine", "Левотироксин натрия 50 мкг, таблетки", "H03AA01", "По 1 таблетке утром натощак за 30 минут до еды"),
        ("omeprazole", "Омепразол 20 мг, капсулы", "A02BC01", "По 1 капсуле 2 раза в день за 30 минут до еды"),
        ("sertraline", "Сертралин 50 мг, таблетки", "N06AB06", "По 1 таблетке утром"),
        ("amoxicillin", "Амоксициллин 500 мг, капсулы", "J01CA04", "По 1 капсуле 3 раза в день 7 дней"),
        ("amoxiclav", "Амоксициллин + клавулановая кислота 875/125 мг, таблетки", "J01CR02", "По 1 таблетке 2 раза в день 7 дней"),
        ("azithromycin", "Азитромицин 500 мг, таблетки", "J01FA10", "По 1 таблетке 1 раз в день 3 дня"),
        ("ceftriaxone", "Цефтриаксон 1 г, порошок для приготовления раствора", "J01DD04", "1 г внутримышечно 1 раз в сутки 7 дней"),
        ("nitrofurantoin", "Нитрофурантоин 100 мг, таблетки", "J01XE01", "По 1 таблетке 2 раза в день 5 дней"),
        ("ibuprofen", "Ибупрофен 400 мг, таблетки", "M01AE01", "По 1 таблетке при боли, не более 3 в сутки, до 5 дней"),
        ("paracetamol", "Парацетамол 500 мг, таблетки", "N02BE01", "По 1 таблетке при температуре выше 38,5 °C, не чаще 4 раз в сутки"),
        ("ferrous-sulfate", "Железа сульфат 320 мг, таблетки", "B03AA07", "По 1 таблетке 2 раза в день за час до еды"),
        ("furosemide", "Фуросемид 40 мг, таблетки", "C03CA01", "По 1 таблетке утром натощак"),
    )
}


# -- conditions ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Condition:
    code: str  # МКБ-10
    name: str  # its Russian name
    chronic: bool
    prevalence: tuple[tuple[int, float], ...]  # (from age, probability per patient [chronic] or per year [acute])
    sex: str | None = None  # only "male" or "female"
    role: str = "therapist"  # who follows it up (ROLES key)
    drugs: tuple[str, ...] = ()
    panels: tuple[str, ...] = ()  # labs at each follow-up
    imaging: tuple[str, ...] = ()
    inpatient: float = 0.0  # share of episodes treated in hospital (acute) / yearly admission chance (chronic)
    trend: tuple[tuple[str, float, float], ...] = ()  # (lab key, shift at onset in SD, drift per year in SD)
    restricted: bool = False  # sensitive: labelled R (v3-Confidentiality restricted)


CONDITIONS = (
    Condition("I10", "Эссенциальная (первичная) гипертензия", True, ((30, 0.12), (45, 0.30), (60, 0.50)), None, "therapist",
              ("enalapril", "amlodipine", "indapamide"), ("bio", "lipids", "urine"), ("mri-brain",), 0.01),
    Condition("I11.9", "Гипертензивная болезнь с преимущественным поражением сердца без (застойной) сердечной недостаточности", True,
              ((50, 0.08), (65, 0.15)), None, "cardiologist", ("losartan", "bisoprolol"), ("bio", "lipids"), ("echo",), 0.02),
    Condition("E11.9", "Инсулиннезависимый сахарный диабет без осложнений", True, ((35, 0.04), (50, 0.10), (65, 0.16)), None,
              "endocrinologist", ("metformin", "gliclazide"), ("hba1c", "bio", "lipids", "malb"), ("us-abdomen",), 0.01,
              (("hba1c", 8.0, 0.6), ("glucose", 6.0, 0.5), ("tg", 1.5, 0.1))),
    Condition("E78.0", "Чистая гиперхолестеринемия", True, ((35, 0.10), (55, 0.22)), None, "cardiologist",
              ("atorvastatin", "rosuvastatin"), ("lipids", "bio"), (), 0.0, (("ldl", 3.5, 0.3), ("chol", 2.5, 0.2))),
    Condition("I25.1", "Атеросклеротическая болезнь сердца", True, ((50, 0.05), (65, 0.12)), None, "cardiologist",
              ("aspirin", "bisoprolol", "atorvastatin"), ("lipids", "bio", "cbc"), ("echo",), 0.05, (("ldl", 2.0, 0.1),)),
    Condition("I48", "Фибрилляция и трепетание предсердий", True, ((55, 0.03), (70, 0.08)), None, "cardiologist",
              ("apixaban", "warfarin", "bisoprolol"), ("inr", "cbc", "bio"), ("echo",), 0.06, (("inr", 15.0, 0.0),)),
    Condition("N18.3", "Хроническая болезнь почки, стадия 3", True, ((50, 0.03), (70, 0.08)), None, "nephrologist",
              ("losartan", "furosemide"), ("bio", "urine", "cbc"), ("us-kidney",), 0.03,
              (("creatinine", 5.0, 0.8), ("urea", 3.0, 0.4), ("hb", -1.2, -0.2), ("potassium", 1.0, 0.2))),
    Condition("E03.9", "Гипотиреоз неуточнённый", True, ((25, 0.02), (45, 0.04)), "female", "endocrinologist", ("levothyroxine",),
              ("thyroid", "lipids"), ("us-thyroid",), 0.0, (("tsh", 8.0, -1.5), ("ft4", -2.5, 0.5))),
    Condition("J45.9", "Астма неуточнённая", True, ((5, 0.04), (40, 0.05)), None, "pulmonologist", ("salbutamol", "budesonide-formoterol"),
              ("cbc",), ("xr-chest",), 0.02),
    Condition("J44.9", "Хроническая обструктивная лёгочная болезнь неуточнённая", True, ((45, 0.03), (60, 0.07)), "male", "pulmonologist",
              ("tiotropium", "salbutamol"), ("cbc",), ("xr-chest",), 0.05),
    Condition("K21.9", "Гастроэзофагеальный рефлюкс без эзофагита", True, ((20, 0.05), (40, 0.08)), None, "gastroenterologist",
              ("omeprazole",), ("cbc",), ("us-abdomen",)),
    Condition("K29.7", "Гастрит неуточнённый", True, ((18, 0.06),), None, "gastroenterologist", ("omeprazole",), ("cbc", "bio"),
              ("us-abdomen",)),
    Condition("D50.9", "Железодефицитная анемия неуточнённая", True, ((15, 0.04), (50, 0.02)), "female", "therapist",
              ("ferrous-sulfate",), ("cbc", "iron"), (), 0.0, (("hb", -3.5, 0.5), ("ferritin", -2.0, 0.3), ("iron", -2.0, 0.3))),
    Condition("M17.9", "Гонартроз неуточнённый", True, ((50, 0.08), (65, 0.15)), None, "surgeon", ("ibuprofen",), ("crp",), (), 0.01),
    Condition("E66.0", "Ожирение, обусловленное избыточным поступлением энергетических ресурсов", True, ((18, 0.10), (40, 0.18)), None,
              "endocrinologist", (), ("bio", "lipids"), (), 0.0, (("tg", 1.0, 0.1), ("alt", 1.0, 0.1))),
    Condition("F32.9", "Депрессивный эпизод неуточнённый", True, ((18, 0.03),), None, "psychiatrist", ("sertraline",), (), (), 0.02,
              (), True),
    Condition("C50.9", "Злокачественное новообразование молочной железы неуточнённой части", True, ((40, 0.008), (55, 0.015)), "female",
              "surgeon", (), ("cbc", "bio"), ("mammo", "ct-chest"), 0.3, (), True),
    Condition("N40", "Гиперплазия предстательной железы", True, ((50, 0.10), (65, 0.20)), "male", "surgeon", (), ("psa", "urine"),
              ("us-kidney",), 0.01, (("psa", 3.0, 0.3),)),
    Condition("M10.9", "Подагра неуточнённая", True, ((40, 0.02),), "male", "therapist", (), ("urate", "bio"), (), 0.0,
              (("urate", 3.0, 0.2),)),
    # acute: probability per patient per year
    Condition("J06.9", "Острая инфекция верхних дыхательных путей неуточнённая", False, ((0, 0.45), (18, 0.30), (65, 0.20)), None,
              "therapist", ("paracetamol",), (), ()),
    Condition("J03.9", "Острый тонзиллит неуточнённый", False, ((0, 0.08), (18, 0.04)), None, "therapist", ("amoxicillin",), ("cbc",), ()),
    Condition("J20.9", "Острый бронхит неуточнённый", False, ((0, 0.06), (18, 0.04)), None, "therapist", ("ibuprofen",), ("cbc",),
              ("xr-chest",)),
    Condition("J18.9", "Пневмония неуточнённая", False, ((0, 0.01), (65, 0.03)), None, "therapist-hospital", ("ceftriaxone", "azithromycin"),
              ("cbc", "crp", "bio"), ("xr-chest", "ct-chest"), 0.5, (("wbc", 4.0, 0.0), ("crp", 25.0, 0.0), ("esr", 4.0, 0.0))),
    Condition("N39.0", "Инфекция мочевыводящих путей без установленной локализации", False, ((15, 0.03),), "female", "therapist",
              ("nitrofurantoin",), ("urine", "cbc"), ("us-kidney",), 0.05, (("wbc", 2.0, 0.0),)),
    Condition("M54.5", "Боль внизу спины", False, ((25, 0.08),), None, "neurologist", ("ibuprofen",), (), (), 0.01),
    Condition("M54.2", "Цервикалгия", False, ((25, 0.04),), None, "neurologist", ("ibuprofen",), (), ()),
    Condition("H66.9", "Средний отит неуточнённый", False, ((0, 0.06), (12, 0.01)), None, "therapist", ("amoxiclav",), (), ()),
    Condition("K59.0", "Запор", False, ((40, 0.02),), None, "gastroenterologist", (), (), ()),
    Condition("U07.1", "COVID-19, вирус идентифицирован", False, ((0, 0.04),), None, "therapist", ("paracetamol",), ("cbc", "crp"),
              ("ct-chest",), 0.08, (("crp", 8.0, 0.0),)),
    Condition("I63.9", "Инфаркт мозга неуточнённый", False, ((55, 0.003), (70, 0.008)), None, "neurologist", ("aspirin", "atorvastatin"),
              ("cbc", "bio", "lipids"), ("mri-brain",), 1.0),
    Condition("I21.9", "Острый инфаркт миокарда неуточнённый", False, ((50, 0.003), (65, 0.007)), "male", "cardiologist",
              ("aspirin", "bisoprolol", "atorvastatin"), ("cbc", "bio", "lipids"), ("echo",), 1.0),
    Condition("Z00.0", "Общий медицинский осмотр", False, ((18, 0.35),), None, "therapist", (), ("cbc", "bio", "urine"), ()),
)
CONDITIONS_BY_CODE = {c.code: c for c in CONDITIONS}


def _norm(text: str) -> str:
    """A name as seed.generator matches it against the packaged displays."""
    return " ".join(text.lower().replace("ё", "е").split())


def _packaged_codes() -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """(system -> normalised display -> code, LOINC -> FSLI code) of the packaged terminology; empty without it."""
    try:
        import terminology
    except ImportError:
        return {}, {}
    by_name = {system: {_norm(d): c for c, d in terminology.concepts(system) if d} for system in (SPECIALTIES, POSITIONS)}
    fsli = {}
    for r in terminology.packaged():
        if r.get("resourceType") == "ConceptMap" and r.get("url", "").endswith("/ConceptMap/fsli-to-loinc"):
            for group in r.get("group", ()):
                for el in group.get("element", ()):
                    for t in el.get("target", ()):
                        fsli.setdefault(t["code"], el["code"])
    return by_name, fsli


def markdown() -> str:
    """seed/vocabulary.md: every code and name the generator uses, for the terminology packages."""
    by_name, fsli_of = _packaged_codes()

    def nsi(system: str, name: str) -> str:
        code = by_name.get(system, {}).get(_norm(name))
        return f"{name} ({code})" if code else f"{name} (text only)"

    out = ["# Vocabulary of the generated population (seed/)", "",
           "Generated from `seed/vocabulary.py` by `python -m seed.vocabulary`; do not edit by hand.",
           ("Codes of NSI directories listed by name (specialties, positions, insurers) are resolved against the packaged "
            "terminology by their Russian name, FSLI codes by their LOINC mapping (ConceptMap fsli-to-loinc); what is not "
            "packaged is written as text only. The code each row resolves to today is shown; the packaged NSI codes are "
            "only those of public SEMD/MIS sources (terminology/data/SOURCES.md). A lab Observation declares "
            "ru-observation-lab when its test has an FSLI code; a Practitioner declares ru-practitioner when both its "
            "specialty and its position are coded — none does today: no specialty below has a public 1066 code."), "",
           f"## МКБ-10 ({ICD10})", "", "| Code | Name | Kind |", "| --- | --- | --- |"]
    out += [f"| {c.code} | {c.name} | {'chronic' if c.chronic else 'acute'} |" for c in CONDITIONS]
    out += ["", f"## Lab tests: LOINC ({LOINC}), FSLI ({FSLI}), UCUM", "", "| LOINC | LOINC name | Russian name | UCUM | FSLI |",
            "| --- | --- | --- | --- | --- |"]
    out += [f"| {t.loinc} | {t.loinc_display} | {t.name} | {t.ucum} | "
            f"{t.fsli or (fsli_of[t.loinc] + ' (by LOINC mapping)' if t.loinc in fsli_of else 'none: no public FSLI code')} |"
            for t in LAB_TESTS.values()]
    out += ["", "Lab panels (DiagnosticReport.code, LOINC):", ""]
    out += [f"- {p.loinc or '(coded by its test)'} {p.loinc_display or ''} — {p.name}" for p in PANELS.values()]
    out += ["", "## Vital signs (LOINC)", "", "| LOINC | Name | Russian name | UCUM |", "| --- | --- | --- | --- |"]
    out += [f"| {v[0]} | {v[1]} | {v[2]} | {v[3] or '-'} |" for v in VITALS.values()]
    out += ["", f"## Specialties ({SPECIALTIES}) and positions ({POSITIONS}), by name", "", "| Specialty | Position |", "| --- | --- |"]
    out += [f"| {nsi(SPECIALTIES, r.specialty)} | {nsi(POSITIONS, r.position)} |" for r in ROLES]
    out += ["", f"## Imaging: nomenclature of medical services ({MED_SERVICES})", "", "| Code | Name | DICOM modality |",
            "| --- | --- | --- |"]
    out += [f"| {i.service} | {i.name} | {i.modality} |" for i in IMAGING.values()]
    out += ["", f"## Drugs (ATC, {ATC})", "", "| ATC | Name |", "| --- | --- |"]
    out += [f"| {d[2]} | {d[1]} |" for d in DRUGS.values()]
    out += ["", "## Other code systems", "",
            (f"- administrative gender male, female (ValueSet ru-gender; NSI sex {NSI_SEX} 1, 2); identity documents "
             "urn:oid:1.2.643.5.1.13.13.99.2.48: 1; OMS policy types urn:oid:1.2.643.5.1.13.13.99.2.245: 3; insurers "
             "urn:oid:1.2.643.5.1.13.13.99.2.183 (whatever is packaged)"),
            ("- HL7: observation-category (laboratory, vital-signs), v2-0074 (LAB, RAD), v2-0203 SB, condition-clinical, "
             "condition-ver-status, condition-category, v3-ActCode (AMB, IMP, OPTIN), v3-ObservationInterpretation (N, H, L), "
             "v3-ParticipationType PRCP, consentscope patient-privacy, v3-Confidentiality R, organization-type (prov, ins), "
             "discharge-disposition home, medicationrequest-course-of-therapy (acute, continuous); DICOM modalities; "
             "BCP-47 ru"), ""]
    return "\n".join(out)


if __name__ == "__main__":
    import pathlib

    (pathlib.Path(__file__).resolve().parent / "vocabulary.md").write_text(markdown(), encoding="utf-8")
