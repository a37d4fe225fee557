"""The card in the holder's hands: Apple and Google Wallet passes and the holder's page."""
