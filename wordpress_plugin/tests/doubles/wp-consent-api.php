<?php
/**
 * Double of the WP Consent API (WordPress/wp-consent-level-api 2.0.1, inc/api-functions.php):
 * wp_has_consent() with the plugin's own decision rules (no consent type: consent; opt-out
 * without a choice: consent; otherwise only a `wp_consent_{category}` cookie saying `allow`),
 * consent_api_registered() and wp_add_cookie_info(). Loaded by the consent tests only: once
 * loaded, with no consent type set, every answer is "consent", as without the API.
 *
 * @package TAP_Order_Logger\Tests
 */

// phpcs:disable

$GLOBALS['tap_consent'] = array( 'type' => '', 'cookies' => array() );

function wp_get_consent_type(): string {
	return apply_filters( 'wp_get_consent_type', $GLOBALS['tap_consent']['type'] );
}

function wp_has_consent( string $category, ?string $requested_by = null ): bool {
	$type        = wp_get_consent_type();
	$cookie_name = 'wp_consent_' . $category;
	if ( ! $type ) {
		$has_consent = true;
	} elseif ( false !== strpos( $type, 'optout' ) && ! isset( $_COOKIE[ $cookie_name ] ) ) {
		$has_consent = true;
	} elseif ( isset( $_COOKIE[ $cookie_name ] ) && 'allow' === $_COOKIE[ $cookie_name ] ) {
		$has_consent = true;
	} else {
		$has_consent = false;
	}
	return apply_filters( 'wp_has_consent', $has_consent, $category, $requested_by );
}

function consent_api_registered( $plugin ) {
	return apply_filters( "wp_consent_api_registered_{$plugin}", false );
}

function wp_add_cookie_info( string $name, string $plugin_or_service, string $category, string $expires, string $cookie_function, string $collected_personal_data = '', bool $member_cookie = false, bool $administrator_cookie = false, string $type = 'HTTP', string $domain = '' ): void {
	$GLOBALS['tap_consent']['cookies'][ $name ] = compact( 'plugin_or_service', 'category', 'expires', 'cookie_function', 'collected_personal_data', 'member_cookie', 'administrator_cookie', 'type', 'domain' );
}
