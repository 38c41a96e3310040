"""Word lists of the built-in entity extractor (``extractor.py``): names, places, organisations.

Hand-curated, lower-case, shipped with the code: the extractor needs no model download. Lists
favour precision: a word that is far more often an ordinary English word than a name (``Will``,
``Hope``, ``Word``) is in ``AMBIGUOUS_NAMES`` or left out, and the extractor then asks for
context before calling it an entity.
"""

from __future__ import annotations

__all__ = [
    "ABBREVIATIONS",
    "AMBIGUOUS_NAMES",
    "CONNECTORS",
    "FIRST_NAMES",
    "LOCATIONS",
    "LOCATION_CUES",
    "LOCATION_PREFIXES",
    "LOCATION_SUFFIXES",
    "MODEL_BRANDS",
    "MOTION_VERBS",
    "NOT_ENTITIES",
    "ORGS",
    "ORG_PREFIXES",
    "ORG_SUFFIXES",
    "PERSON_CUES_AFTER",
    "PERSON_CUES_BEFORE",
    "PERSON_TITLES",
    "PRODUCTS",
]


def _words(text: str) -> frozenset[str]:
    return frozenset(w.strip().lower() for w in text.split(",") if w.strip())


FIRST_NAMES = _words(
    """
    aaron, abby, abigail, adam, adrian, ahmed, aidan, aiden, aisha, alan, albert, alberto, alex,
    alexa, alexander, alexandra, alexis, alfred, ali, alice, alicia, alison, allison, alyssa,
    amanda, amber, amelia, amir, amy, ana, andrea, andrew, andy, angela, angelo, anika, anita,
    ann, anna, anne, annie, anthony, antonio, ariana, arjun, arthur, ashley, audrey, austin, ava,
    barbara, becky, ben, benjamin, bernard, beth, betty, beverly, bianca, bob, bobby, brad,
    bradley, brandon, brenda, brian, bridget, brittany, bruce, bryan, caleb, calvin, cameron,
    camila, carl, carla, carlos, carmen, carol, caroline, carolyn, carter, casey, catherine,
    cathy, charles, charlie, charlotte, chen, cheryl, chloe, chris, christian, christina,
    christine, christopher, cindy, claire, clara, claudia, colin, connor, craig, cristina,
    crystal, cynthia, daisy, dan, dana, daniel, daniela, danielle, danny, darren, dave, david,
    deb, debbie, deborah, debra, denise, dennis, derek, diana, diane, diego, dmitri, dominic,
    donald, donna, doris, dorothy, douglas, dylan, ed, eddie, edward, elaine, eleanor, elena,
    eli, elijah, elizabeth, ella, ellen, ellie, emily, emma, eric, erica, erik, erin, ethan,
    eugene, eva, evan, evelyn, fatima, felix, fernando, fiona, francesca, francis, francisco,
    gabriel, gabriella, gary, gavin, gene, george, gerald, gina, giovanni, giulia, gloria,
    gordon, greg, gregory, hailey, haley, hannah, harold, harry, hassan, heather, helen, henry,
    hiroshi, holly, howard, hugo, ian, igor, irene, isaac, isabel, isabella, ivan, jack, jackson,
    jacob, jacqueline, jake, james, jamie, jane, janet, janice, jared, jasmine, jason, javier,
    jay, jean, jeff, jeffrey, jenna, jennifer, jenny, jeremy, jerry, jesse, jessica, jill, jim,
    jimmy, jo, joan, joanna, joanne, joe, joel, john, johnny, jon, jonathan, jordan, jorge, jose,
    joseph, josh, joshua, joy, joyce, juan, judith, judy, julia, julian, julie, justin, kai,
    karen, kate, katherine, kathleen, kathryn, kathy, katie, kayla, keith, kelly, ken, kenji,
    kenneth, kevin, kim, kimberly, kyle, laura, lauren, leah, lee, leo, leon, leonardo, liam,
    lily, linda, lisa, logan, lorenzo, lori, louis, louise, lucas, lucia, lucy, luis, luke,
    lydia, mackenzie, madison, maggie, manuel, marco, marcus, margaret, maria, mariana, marie,
    marilyn, mario, marisa, marissa, martha, martin, mary, mason, matt, matthew, maya, megan,
    mel, melanie, melissa, mia, michael, michelle, miguel, mike, mila, mohammed, molly, monica,
    morgan, muhammad, nancy, naomi, natalie, nate, nathan, nathaniel, neil, nicholas, nick,
    nicole, nina, noah, nora, oliver, olivia, omar, oscar, owen, pablo, pam, pamela, patricia,
    patrick, paul, paula, pedro, peggy, peter, philip, phillip, priya, rachel, rafael, rahul,
    ralph, randy, raj, ravi, raymond, rebecca, richard, ricardo, rick, rita, rob, robert,
    roberto, robin, roger, ronald, rosa, ruth, ryan, sabrina, sally, sam, samantha, samuel,
    sandra, sara, sarah, scott, sean, sebastian, sergei, sergio, seth, shannon, sharon, shawn,
    sheila, shirley, simon, sofia, sophia, sophie, stephanie, stephen, steve, steven, stuart,
    susan, suzanne, sydney, tanya, tara, taylor, ted, teresa, terry, theresa, thomas, tiffany,
    tim, timothy, tina, todd, tom, tommy, tony, tracy, travis, tyler, valerie, vanessa, victor,
    victoria, vincent, virginia, walter, wayne, wei, wendy, william, willie, xavier, yuki,
    yusuf, zach, zachary, zoe, zoey
    """
)

# Names that are also common English words (or months): a name only with context.
AMBIGUOUS_NAMES = _words(
    """
    will, may, bill, mark, hope, grace, joy, faith, rose, summer, dawn, art, sue, pat, frank,
    guy, chase, miles, april, june, august, sky, rich, max, amber, ruby, ivy, iris, holly,
    jordan, austin, madison, victoria, virginia, sydney, charlotte, lee, jean, jay, kim, chen,
    wei, ray, don, drew, rob, ed, jo, eve, brook, dean, hunter, cash, gene
    """
)

FIRST_NAMES = FIRST_NAMES | AMBIGUOUS_NAMES

PERSON_TITLES = _words(
    "mr, mr., mrs, mrs., ms, ms., dr, dr., prof, prof., sir, dame, lady, lord, aunt, uncle, "
    "grandma, grandpa, president, senator, governor, mayor, judge, coach, captain, officer, "
    "professor, doctor, father, sister, brother, saint, st."
)

# Never entities on their own, whatever their capitalisation.
NOT_ENTITIES = _words(
    """
    i, i'm, i've, i'd, i'll, ok, okay, hey, hi, hello, thanks, thank, yes, no, oh, wow, yeah,
    yay, lol, omg, btw, fyi, haha, hmm, um, uh, mom, dad, mum, god, the, a, an, and, or, but,
    so, my, your, our, his, her, their, its, this, that, these, those, it, we, you, he, she,
    they, what, when, where, who, why, how, which, if, then, also, just, really, great, good,
    nice, cool, awesome, sure, well, anyway, please, sorry, dear, happy, congrats,
    congratulations, ceo, cto, cfo, vp, phd, md, ai, ml, api, faq, diy, tv, pc, usb, gps, pdf,
    lgbtq, lgbt, lgbtq+, covid, asap, eta, rsvp, let, here, there, everyone, everybody,
    someone, something, nothing, life, mine, yep, nope, yup, cheers, bye, goodbye, welcome
    """
)

LOCATIONS = _words(
    """
    afghanistan, albania, algeria, andorra, angola, argentina, armenia, australia, austria,
    azerbaijan, bahamas, bahrain, bangladesh, barbados, belarus, belgium, belize, benin, bhutan,
    bolivia, bosnia, botswana, brazil, brunei, bulgaria, burkina faso, burundi, cambodia,
    cameroon, canada, chad, chile, china, colombia, congo, costa rica, croatia, cuba, cyprus,
    czech republic, czechia, denmark, djibouti, dominican republic, ecuador, egypt, el salvador,
    england, eritrea, estonia, eswatini, ethiopia, fiji, finland, france, gabon, gambia,
    georgia, germany, ghana, greece, greenland, guatemala, guinea, guyana, haiti, honduras,
    hungary, iceland, india, indonesia, iran, iraq, ireland, israel, italy, ivory coast,
    jamaica, japan, jordan, kazakhstan, kenya, kosovo, kuwait, kyrgyzstan, laos, latvia,
    lebanon, lesotho, liberia, libya, liechtenstein, lithuania, luxembourg, madagascar, malawi,
    malaysia, maldives, mali, malta, mauritania, mauritius, mexico, moldova, monaco, mongolia,
    montenegro, morocco, mozambique, myanmar, namibia, nepal, netherlands, holland, new zealand,
    nicaragua, niger, nigeria, north korea, north macedonia, norway, oman, pakistan, palestine,
    panama, papua new guinea, paraguay, peru, philippines, poland, portugal, qatar, romania,
    russia, rwanda, samoa, san marino, saudi arabia, scotland, senegal, serbia, seychelles,
    sierra leone, singapore, slovakia, slovenia, somalia, south africa, south korea, korea,
    south sudan, spain, sri lanka, sudan, suriname, sweden, switzerland, syria, taiwan,
    tajikistan, tanzania, thailand, togo, tonga, trinidad, tunisia, turkey, turkmenistan,
    uganda, ukraine, united arab emirates, uae, united kingdom, uk, u.k., great britain,
    britain, united states, united states of america, usa, u.s., u.s.a., america, uruguay,
    uzbekistan, vanuatu, vatican, venezuela, vietnam, wales, yemen, zambia, zimbabwe,
    alabama, alaska, arizona, arkansas, california, colorado, connecticut, delaware, florida,
    hawaii, idaho, illinois, indiana, iowa, kansas, kentucky, louisiana, maine, maryland,
    massachusetts, michigan, minnesota, mississippi, missouri, montana, nebraska, nevada,
    new hampshire, new jersey, new mexico, new york, north carolina, north dakota, ohio,
    oklahoma, oregon, pennsylvania, rhode island, south carolina, south dakota, tennessee,
    texas, utah, vermont, washington, west virginia, wisconsin, wyoming,
    ontario, quebec, british columbia, alberta, bavaria, catalonia, tuscany, provence, siberia,
    patagonia, scandinavia, europe, asia, africa, north america, south america, latin america,
    antarctica, oceania, middle east, caribbean, mediterranean, balkans, sahara, amazon basin,
    new york city, nyc, los angeles, la, san francisco, sf, chicago, houston, phoenix,
    philadelphia, san antonio, san diego, dallas, san jose, austin, jacksonville, fort worth,
    columbus, charlotte, indianapolis, seattle, denver, boston, nashville, detroit, portland,
    las vegas, memphis, louisville, baltimore, milwaukee, albuquerque, tucson, fresno,
    sacramento, atlanta, miami, orlando, tampa, new orleans, minneapolis, cleveland,
    pittsburgh, cincinnati, st. louis, kansas city, salt lake city, honolulu, anchorage,
    oakland, berkeley, palo alto, mountain view, cupertino, menlo park, redmond, brooklyn,
    manhattan, queens, the bronx, harlem, hollywood, silicon valley, bay area, long island,
    toronto, montreal, vancouver, ottawa, calgary, mexico city, guadalajara, havana,
    london, manchester, liverpool, birmingham, leeds, glasgow, edinburgh, bristol, oxford,
    cambridge, dublin, belfast, cardiff, paris, lyon, marseille, nice, bordeaux, berlin,
    munich, hamburg, frankfurt, cologne, vienna, zurich, geneva, bern, amsterdam, rotterdam,
    brussels, antwerp, madrid, barcelona, valencia, seville, lisbon, porto, rome, milan,
    naples, florence, venice, turin, athens, istanbul, ankara, moscow, st. petersburg, kyiv,
    kiev, warsaw, krakow, prague, budapest, bucharest, sofia, belgrade, zagreb, copenhagen,
    stockholm, oslo, helsinki, reykjavik, tallinn, riga, vilnius, tokyo, osaka, kyoto,
    yokohama, seoul, busan, beijing, shanghai, shenzhen, guangzhou, hong kong, taipei,
    singapore city, bangkok, hanoi, ho chi minh city, manila, jakarta, bali, kuala lumpur,
    mumbai, delhi, new delhi, bangalore, bengaluru, chennai, kolkata, hyderabad, karachi,
    lahore, dhaka, kathmandu, dubai, abu dhabi, doha, riyadh, tehran, baghdad, jerusalem,
    tel aviv, beirut, cairo, casablanca, marrakech, lagos, nairobi, addis ababa, accra,
    johannesburg, cape town, sydney, melbourne, brisbane, perth, adelaide, auckland,
    wellington, rio de janeiro, rio, sao paulo, são paulo, buenos aires, santiago, lima,
    bogota, bogotá, caracas, quito, montevideo, hawaii island, maui, yosemite, yellowstone,
    grand canyon, niagara falls, mount everest, everest, alps, andes, himalayas, rockies,
    rocky mountains, lake tahoe, central park, times square, golden gate bridge,
    eiffel tower, big ben, stonehenge, machu picchu, the louvre, louvre, colosseum
    """
)

LOCATION_SUFFIXES = _words(
    "city, county, street, st, avenue, ave, road, rd, boulevard, blvd, lane, drive, park, lake, "
    "river, mountain, mountains, mount, beach, island, islands, bay, valley, canyon, falls, "
    "square, bridge, airport, harbor, harbour, station, province, state, coast, desert, forest, "
    "peninsula, heights, hills, springs, village, town, district"
)
LOCATION_PREFIXES = _words("mount, lake, port, fort, cape, gulf, isle, san, santa, los, las")

ORGS = _words(
    """
    openai, anthropic, google, alphabet, deepmind, google deepmind, microsoft, apple, amazon,
    aws, amazon web services, meta, facebook, instagram, whatsapp, netflix, nvidia, intel, amd,
    ibm, oracle, salesforce, adobe, cisco, qualcomm, tesla, spacex, twitter, x corp, linkedin,
    tiktok, bytedance, snapchat, snap, pinterest, reddit, uber, lyft, airbnb, spotify, stripe,
    shopify, paypal, ebay, zoom, slack, dropbox, github, gitlab, atlassian, mozilla, wikipedia,
    wikimedia, samsung, sony, lg, panasonic, toshiba, huawei, xiaomi, alibaba, tencent, baidu,
    lenovo, dell, hewlett-packard, asus, acer, nokia, ericsson, siemens, philips, sap,
    toyota, honda, nissan, ford, general motors, gm, chrysler, volkswagen, vw, bmw, mercedes,
    mercedes-benz, audi, porsche, ferrari, volvo, hyundai, kia, boeing, airbus, lockheed martin,
    walmart, target, costco, ikea, starbucks, mcdonald's, mcdonalds, coca-cola, pepsi,
    pepsico, nike, adidas, disney, warner bros, universal, paramount, hbo, pixar, marvel,
    nintendo, sega, valve, ubisoft, blizzard, electronic arts, epic games, hugging face,
    huggingface, mistral ai, cohere, stability ai, midjourney, perplexity, databricks,
    snowflake, palantir, jpmorgan, jp morgan, goldman sachs, morgan stanley, citigroup, citi,
    wells fargo, bank of america, hsbc, barclays, visa, mastercard, american express,
    blackrock, berkshire hathaway, pfizer, moderna, johnson & johnson, novartis, roche,
    unilever, procter & gamble, nestle, nestlé, shell, bp, exxon, exxonmobil, chevron,
    fedex, ups, dhl, delta, united airlines, american airlines, lufthansa, emirates,
    ryanair, nasa, esa, fbi, cia, nsa, irs, fda, cdc, who, world health organization, un,
    united nations, unesco, unicef, nato, eu, european union, european commission, imf,
    world bank, wto, opec, red cross, greenpeace, amnesty international, bbc, cnn, nbc, cbs,
    abc news, fox news, npr, reuters, bloomberg, associated press, new york times,
    the new york times, washington post, wall street journal, the guardian, the economist,
    financial times, harvard, harvard university, stanford, stanford university, mit,
    yale, princeton, columbia university, berkeley university, uc berkeley, ucla, nyu,
    caltech, carnegie mellon, oxford university, university of oxford, cambridge university,
    university of cambridge, eth zurich, nba, nfl, mlb, nhl, fifa, uefa, ioc, premier league,
    real madrid, fc barcelona, manchester united, lakers, yankees
    """
)

ORG_SUFFIXES = _words(
    "inc, inc., corp, corp., corporation, ltd, ltd., llc, gmbh, ag, plc, co, co., company, "
    "group, foundation, institute, university, college, bank, association, agency, labs, "
    "laboratories, technologies, systems, airlines, airways, motors, partners, capital, "
    "ventures, studios, records, hospital, clinic, church, school, academy, club, society, "
    "council, committee, department, ministry, museum, library, fund, trust, union, network, "
    "press, media, games, software, solutions, consulting, holdings, industries, enterprises, "
    "pharmaceuticals, team, federation, league, party, center, centre"
)
ORG_PREFIXES = _words(
    "university, bank, ministry, department, institute, museum, college, church, school, "
    "academy, house"
)

# Products matched by name; a trailing model designation ("15 Pro", "S24") is taken along.
PRODUCTS = _words(
    """
    chatgpt, gpt, claude, gemini, copilot, github copilot, bard, llama, mistral, dall-e,
    stable diffusion, siri, alexa, cortana, bixby, kindle, echo, iphone, ipad, ipod, imac,
    macbook, macbook pro, macbook air, mac mini, mac pro, airpods, apple watch, apple tv,
    vision pro, apple vision pro, homepod, google pixel, pixel, chromebook, chromecast,
    google home, nest, samsung galaxy, galaxy, microsoft surface, surface, xbox, xbox series x,
    playstation, nintendo switch, switch, game boy, wii, oculus, quest, meta quest, windows,
    macos, ios, ipados, android, chrome, firefox, safari, edge, photoshop, lightroom,
    illustrator, premiere, excel, powerpoint, outlook, onedrive, gmail, google maps,
    google docs, google drive, youtube, whatsapp, telegram, signal, discord, notion, figma,
    tesla model 3, tesla model s, tesla model x, tesla model y, model 3, model s, model x,
    model y, cybertruck, prius, camry, corolla, civic, mustang, f-150, jeep wrangler,
    vs code, visual studio, visual studio code, postgres, postgresql, mysql, mongodb, redis,
    kubernetes, docker, tensorflow, pytorch, fitbit, garmin, roomba, peloton
    """
)

# Brands whose bare name is not a product but which are followed by a model ("Pixel 8").
MODEL_BRANDS = _words("pixel, galaxy, surface, switch, quest, echo, edge, signal, model, gpt")

# Context: abbreviations that end with a dot without ending a sentence, lower-case words that may
# sit inside a name ("Bank of America"), and the words around an unknown name that say what it is.
ABBREVIATIONS = _words(
    "co., corp., dr., ft., inc., jr., ltd., mr., mrs., ms., mt., prof., sr., st., u.k., u.s., "
    "u.s.a."
)
CONNECTORS = _words("&, al, bin, da, de, del, den, der, di, du, el, la, le, of, the, van, von, y")
LOCATION_CUES = _words(
    "across, around, from, in, inside, near, outside, throughout, visit, visited, visiting"
)
MOTION_VERBS = _words(
    "back, drive, drove, flew, fly, flying, go, going, headed, heading, move, moved, moving, "
    "relocated, returned, travel, traveled, travelled, trip, way, went"
)
PERSON_CUES_BEFORE = _words(
    """
    ask, asked, aunt, boss, boyfriend, brother, called, colleague, congrats, cousin, coworker,
    dad, daughter, dear, dr., father, friend, friends, girlfriend, grandma, grandpa, hello, hey,
    hi, husband, love, meet, meeting, met, miss, mom, mother, mr., mrs., ms., named, neighbor,
    neighbour, partner, sister, son, tell, thank, thanks, told, uncle, wife, with
    """
)
PERSON_CUES_AFTER = _words(
    """
    and, asked, called, came, had, has, is, likes, lives, loves, mentioned, replied, said, says,
    suggested, texted, thinks, thought, told, wants, was, went, who, works, wrote
    """
)
