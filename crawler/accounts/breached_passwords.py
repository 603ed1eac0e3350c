"""An offline list of the passwords most often found in breach corpora (docs/hazards.md A-10).

A small bundled list (no network look-up, so a password never leaves the machine): the
most common entries of at least 8 characters in public breach-frequency lists (SecLists
"10-million-password-list-top-1000", the NCSC "100k most used passwords"), plus the shapes
a review team is likely to try. Shorter passwords are refused by length before this check.
Comparison ignores case and surrounding spaces, so "Password1" is caught as "password1".
Operators who hold a larger list can extend `BREACHED` at start-up; see docs/review.md.
"""

from __future__ import annotations

_WORDS = """
password password1 password12 password123 password1234 passw0rd p@ssw0rd p@ssword
12345678 123456789 1234567890 12345678910 123123123 11111111 111111111 1111111111
00000000 000000000 0000000000 88888888 87654321 987654321 9876543210 11223344
12341234 147258369 123321123 1q2w3e4r 1q2w3e4r5t 1qaz2wsx 1qazxsw2 zaq12wsx
qwertyui qwertyuiop qwerty123 qwerty12 qwerty1234 asdfghjk asdfghjkl asdf1234
zxcvbnm1 zxcvbnm123 abcd1234 abc12345 abcdefgh abcdefg1 a1b2c3d4 aa123456 aa12345678
iloveyou iloveyou1 iloveyou2 sunshine sunshine1 princess princess1 football football1
baseball baseball1 superman superman1 starwars starwars1 trustno1 whatever whatever1
welcome1 welcome123 welcome12 letmein1 letmein123 changeme changeme1 changeme123
computer computer1 internet michelle jennifer jessica1 charlie1 michael1 jordan23
midnight mercedes maverick marlboro victoria corvette mustang1 porsche9 ferrari1
chocolate chocolate1 butterfly butterfly1 pokemon1 liverpool liverpool1 chelsea1
arsenal1 manchester manutd11 barcelona barcelona1 rangers1 tottenham
admin123 admin1234 administrator adminadmin root1234 toor1234 qazwsxedc qazwsx123
secret123 secret12 security security1 monkey123 dragon12 dragon123 master12 master123
shadow12 shadow123 freedom1 killer12 hunter12 hunter123 summer12 summer123 summer2024
winter12 winter123 spring12 autumn12 january1 december1 september monday12 friday13
london12 london123 berlin123 amsterdam paris123 newyork1 america1 england1 scotland
qwerty11 qwerty00 ashley12 michael12 daniel12 thomas12 matthew1 jordan12 andrew12
lovely12 love1234 loveme12 loveyou1 lovelove babygirl babygirl1 angel123 angels12
soccer12 hockey12 tigger12 pepper12 cookie12 cheese12 banana12 orange12 purple12
google123 facebook facebook1 linkedin youtube1 myspace1 samsung1 iphone12 nintendo
pa55word pa55w0rd passpass passw0rd1 password! password01 password2 password3
mypassword mypassword1 newpassword temppass temp1234 test1234 testtest tester123
guest123 default1 unknown1 nothing1 blahblah asdfasdf qwerqwer zxcvzxcv 12qwaszx
1234qwer 1234abcd q1w2e3r4 q1w2e3r4t5 a1s2d3f4 1a2b3c4d 123abc123 abc123456
123456789a 12345678a 123456aa 123456qq qwe123qwe 123qweasd 1qaz2wsx3edc
correcthorsebatterystaple correct horse battery staple
"""

BREACHED: set[str] = set(_WORDS.split()) | {"correct horse battery staple"}


def is_breached(password: str) -> bool:
    """True when `password` (case and surrounding spaces ignored) is on the list."""
    return password.strip().lower() in BREACHED
