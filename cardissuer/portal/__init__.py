"""The holder's side of the service: apply, track, change a passport, renew, report a lost
phone, online, from a phone, in the holder's language.

A foreigner proves control of an e-mail address with a one-time code (:mod:`cardissuer.mail`
sends it), submits an application with the passport data page and a portrait, and follows it
until an officer of the office decides it in the console's review queue. Everything here is
untrusted public input: see docs/SECURITY.md, "The holder portal".
"""
